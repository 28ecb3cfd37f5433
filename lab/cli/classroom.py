"""A classroom: N copies of one lab on one engine (`lab up --copies`, `lab down --copies`,
`lab check --all-copies`). Shared by the up/down and check commands; defines no command.

Each copy is an independent lab (its own name, networks and addresses: see
lab/topology/copies.py) whose containers carry its number and owner as labels,
so the engine alone knows the classroom: no file of ours to lose or go stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.backends.protocol import Backend, LabSummary
from lab.checks import run_checks
from lab.checks.run import CheckResult
from lab.errors import LabError, UsageError
from lab.lock import lab_writer
from lab.plan import make_plan
from lab.state import ensure_lab_state
from lab.topology import Lab, load_copies


@dataclass(frozen=True)
class CopyOutcome:
    name: str
    owner: str
    error: str = ""            # why it failed, in the words of the error; "" when it is up
    seconds: float = 0.0


def read_roster(path: Path) -> list[str]:
    """Owners, one per line (a name or an address); blank lines and # comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read the roster ({error}): give a text file with one owner "
                         "per line") from None
    owners: list[str] = []
    for number, line in enumerate(lines, start=1):
        owner = line.split("#", 1)[0].strip()
        if not owner:
            continue
        if owner in owners:
            raise UsageError(f"{path}:{number}: {owner!r} is in the roster twice: each copy has one owner")
        if any(not c.isprintable() for c in owner) or len(owner) > 200:
            raise UsageError(f"{path}:{number}: an owner is printable text of at most 200 characters")
        owners.append(owner)
    if not owners:
        raise UsageError(f"{path}: the roster names nobody: write one owner per line")
    return owners


def owners_for(count: int | None, roster: Path | None) -> list[str]:
    """One owner ("" when there is no roster) per copy to make."""
    if roster is None:
        if count is None:
            raise UsageError("--copies needs a number, or a --roster to count the copies from")
        return [""] * count
    owners = read_roster(roster)
    if count is not None and count != len(owners):
        raise UsageError(f"--copies {count} but the roster {roster} names {len(owners)} owners: "
                         "give one of them, or make them agree")
    return owners


def copies_of(backend: Backend, file: Path) -> list[LabSummary]:
    """The classroom copies of file running on this engine, by number."""
    wanted = str(file.resolve())
    return sorted((e for e in backend.list_labs() if e.copy and e.file == wanted), key=lambda e: e.copy)


def up_copies(backend: Backend, file: Path, owners: list[str]) -> list[CopyOutcome]:
    """Bring copies 1..len(owners) of file up, one after the other. A copy that fails is undone
    (as any failed `lab up`) and the others go on: a classroom with one broken copy still runs."""
    labs = load_copies(file, list(enumerate(owners, start=1)))
    outcomes = []
    for lab in labs:
        try:
            with lab_writer(lab.name, "up"):
                report = backend.up(make_plan(lab, ensure_lab_state(lab)))
            outcomes.append(CopyOutcome(lab.name, lab.owner, seconds=report.seconds))
        except LabError as error:
            outcomes.append(CopyOutcome(lab.name, lab.owner, error=str(error)))
    return outcomes


def down_copies(backend: Backend, file: Path, volumes: bool) -> list[str]:
    """Remove every copy of file; the names removed."""
    removed = []
    for entry in copies_of(backend, file):
        with lab_writer(entry.lab, "down"):
            backend.down(entry.lab, volumes=volumes)
        removed.append(entry.lab)
    return removed


def check_copies(backend: Backend, file: Path) -> list[tuple[Lab, list[CheckResult]]]:
    """Run the topology's checks in every running copy of file."""
    entries = copies_of(backend, file)
    if not entries:
        raise UsageError(f"no copies of {file} are running: make them with `lab up {file} --copies N`")
    return [(lab, run_checks(backend, lab)) for lab in load_copies(file, [(e.copy, e.owner) for e in entries])]


def describe(lab_name: str, owner: str) -> str:
    return f"{lab_name} ({owner})" if owner else lab_name
