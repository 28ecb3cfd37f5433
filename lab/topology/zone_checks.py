"""Zone data that BIND would refuse, or that would break resolution, found in the file.

`named-checkzone` is the judge of a zone; these checks say the same things
earlier, in the topology's words and at the line that caused them:

- a CNAME at a zone's apex (the apex holds the SOA and NS records);
- a CNAME on a DNS server's NS host name (its NS record points there and its
  glue A record is made from the topology);
- records that contradict the derived glue (an A record on a server's NS host
  name pointing elsewhere), or that sit in a parent zone below a delegation to
  a child zone of the lab (BIND would not serve them);
- CNAME chains that loop;
- numbers of MX and SRV records outside 0..65535.
"""

from __future__ import annotations

from typing import Callable

from lab.topology.model import TopologySpec
from lab.topology.names import absolute, ns_host, zone_of

Report = Callable[..., None]   # Checker.error(path, message, at_key=False)
MAX_UINT16 = 65535
NUMBER_NAMES = {"MX": ("preference",), "SRV": ("priority", "weight", "port")}


def derived_names(spec: TopologySpec) -> dict[str, str]:
    """Absolute name -> the DNS server whose NS host name (with derived glue) it is."""
    return {ns_host(server, zone): server for zone, data in spec.zones.items() for server in data.servers}


def _relative(owner: str, zone: str) -> str:
    return owner.rstrip(".").removesuffix(zone).rstrip(".") or "@"


class ZoneDataChecker:
    def __init__(self, spec: TopologySpec, report: Report):
        self.spec = spec
        self.report = report
        self.derived = derived_names(spec)
        self.zone_names = list(spec.zones)

    def run(self) -> None:
        for zone, data in self.spec.zones.items():
            for name, by_type in data.records.items():
                self.check_name(zone, name, by_type)
        self.check_cname_loops()

    def check_name(self, zone: str, name: str, by_type: dict) -> None:
        path = ("zones", zone, "records", name)
        owner = absolute(name, zone)
        home = zone_of(owner, self.zone_names)
        if home is not None and home != zone:
            self.report(path, f"{owner} is inside zone {home}, which this lab delegates to its own "
                        f"servers, so zone {zone} cannot serve it: move this record under zone "
                        f"{home} (as '{_relative(owner, home)}')", at_key=True)
            return
        if "CNAME" in by_type and name == "@":
            self.report((*path, "CNAME"), f"a CNAME cannot be at the zone's own name ({zone}): "
                        "that name holds the zone's SOA and NS records; use an A record "
                        "(like A: lb) instead", at_key=True)
        elif "CNAME" in by_type and owner in self.derived:
            self.report((*path, "CNAME"), f"{owner} is the NS host name of DNS server "
                        f"'{self.derived[owner]}' (its NS record points there and its address is "
                        "derived), so it cannot be a CNAME: give this record another name", at_key=True)
        for rtype, values in by_type.items():
            for value in values:
                self.check_value(zone, owner, (*path, rtype), rtype, value)

    def check_value(self, zone: str, owner: str, path: tuple, rtype: str, value: str) -> None:
        if rtype == "A" and owner in self.derived and value != self.derived[owner]:
            server = self.derived[owner]
            self.report(path, f"{owner} is the NS host name of DNS server '{server}', whose "
                        f"address (the glue) is derived from the node; this A record says "
                        f"'{value}' instead: remove it, or write A: {server}")
        if rtype in NUMBER_NAMES:
            fields = value.split()
            for label, number in zip(NUMBER_NAMES[rtype], fields):
                if number.isascii() and number.isdigit() and int(number) > MAX_UINT16:
                    self.report(path, f"the {rtype} {label} {number} is over {MAX_UINT16}, the "
                                "largest a DNS record can hold: use a smaller number")

    def check_cname_loops(self) -> None:
        targets: dict[str, tuple[str, tuple]] = {}
        for zone, data in self.spec.zones.items():
            for name, by_type in data.records.items():
                for value in by_type.get("CNAME", ())[:1]:
                    targets[absolute(name, zone)] = (absolute(value, zone),
                                                     ("zones", zone, "records", name, "CNAME"))
        reported: set[str] = set()
        for start in targets:
            chain, here = [start], targets[start][0]
            while here in targets and here not in chain:
                chain.append(here)
                here = targets[here][0]
            if here == start and not reported.intersection(chain):
                reported.update(chain)
                loop = " -> ".join([*chain, start])
                self.report(targets[start][1], f"these CNAMEs point at each other in a loop "
                            f"({loop}), so the name never resolves: make one of them an A record")


def check_zone_data(spec: TopologySpec, report: Report) -> None:
    ZoneDataChecker(spec, report).run()
