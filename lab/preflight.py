"""Pre-flight: the rendered zones judged by BIND itself, before anything runs.

`lab validate` knows the rules it was taught; `named-checkzone` knows all of
BIND's (check-names, name lengths, record syntax). `lab validate --deep` renders
every zone exactly as `lab up` would, runs named-checkzone on each in one
throwaway container of the lab's dns image (no network, removed afterwards,
nothing of a running lab touched), and maps every refusal back to the record
of the topology that produced the line BIND names.
"""

from __future__ import annotations

import io
import re
import tarfile

from lab.kinds import registry
from lab.kinds.registry import AUTHORITATIVE_DNS
from lab.backends.protocol import Backend
from lab.plan.zones import SERIAL_TOKEN, ZoneData, all_zones, zone_file_text
from lab.topology import Lab
from lab.topology.errors import Problem
from lab.topology.yaml_source import Source

ZONE_DIR = "/tmp/lab-zones"
HEADER_LINES = 2   # zone_file_text: a comment and $TTL, then one record per line
BIND_LINE = re.compile(rf"{ZONE_DIR}/(\d+)\.zone:(\d+): (.*)")
BLOCK = re.compile(r"^== zone (\d+)$\n(.*?)^== exit (\d+)$", re.M | re.S)
CHECKZONE = "named-checkzone -k fail -i local"   # named's defaults for a primary zone, offline


def _script(zones: list[ZoneData]) -> str:
    # Zone names are validated domain names (or "." and in-addr.arpa names): safe unquoted.
    return "\n".join(f"echo '== zone {i}'; {CHECKZONE} '{zone.name}' {ZONE_DIR}/{i}.zone 2>&1; "
                     f"echo \"== exit $?\"" for i, zone in enumerate(zones))


def _archive(zones: list[ZoneData]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, zone in enumerate(zones):
            data = zone_file_text(zone).replace(SERIAL_TOKEN, "1").encode()
            info = tarfile.TarInfo(f"{ZONE_DIR.rsplit('/', 1)[1]}/{i}.zone")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def run_checkzone(backend: Backend, zones: list[ZoneData]) -> dict[int, tuple[int, str]]:
    """Zone index -> (named-checkzone's exit status, its output), from one throwaway node of
    the dns image (no network: nothing of a running lab is touched)."""
    checkzone_kind = registry.one_with_role(AUTHORITATIVE_DNS).name   # its image has named-checkzone
    output = backend.run_isolated(checkzone_kind, ["sh", "-c", _script(zones)], _archive(zones),
                                  ZONE_DIR.rsplit("/", 1)[0])
    return {int(i): (int(code), text) for i, text, code in BLOCK.findall(output)}


def _record_path(lab: Lab, zone: ZoneData, line: int) -> tuple:
    """The topology field behind line `line` of the rendered zone (or the zone itself)."""
    index = line - HEADER_LINES - 1
    if zone.name not in lab.spec.zones:
        return ("zones",)
    if 0 <= index < len(zone.records):
        record = zone.records[index]
        relative = record.owner.rstrip(".").removesuffix(zone.name).rstrip(".") or "@"
        written = lab.spec.zones[zone.name].records.get(relative, {})
        if record.rtype in written:
            return ("zones", zone.name, "records", relative, record.rtype)
    return ("zones", zone.name)


def bind_problems(lab: Lab, source: Source, backend: Backend) -> list[Problem]:
    """Every refusal of named-checkzone, placed at the topology line that produced it."""
    zones = list(all_zones(lab).values())
    problems = []
    for index, (code, text) in sorted(run_checkzone(backend, zones).items()):
        if code == 0:
            continue
        zone = zones[index]
        found = [m for m in (BIND_LINE.search(line) for line in text.splitlines()) if m]
        if not found:
            reason = text.strip().splitlines()[0] if text.strip() else f"exit {code}"
            problems.append(source.problem(("zones", zone.name), f"named-checkzone refuses zone "
                                           f"{zone.name}: {reason}", at_key=True))
        for match in found:
            line = int(match.group(2))
            rendered = zone_file_text(zone).splitlines()[line - 1].split()
            problems.append(source.problem(
                _record_path(lab, zone, line), f"named-checkzone refuses zone {zone.name}: "
                f"{match.group(3)} (the rendered record: {' '.join(rendered)}); BIND will not load "
                "the zone: change or remove this record", at_key=True))
    return problems
