"""What the command modules share: consoles, options, and the rules for choosing a lab.

Command modules import this module and never each other; lab/cli/app.py alone
assembles them into the `lab` group. "Which lab" and "that lab's topology" are
decided here, once, for every command.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from lab.backends.protocol import Backend
from lab.errors import LabError, RuntimeFailure, UsageError
from lab.topology import Lab, TopologyError, load_copy, load_topology

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

TOPOLOGY_ARG = click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
LAB_OPTION = click.option("--lab", "lab_name", metavar="NAME",
                          help="Which lab (default: the only one running, else the default topology's).")


class OutputFile(click.Path):
    """A file to write (-o): its folder must exist, checked before any work (a usage error, exit 2)."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        folder = Path(path).parent
        if not folder.is_dir():
            self.fail(f"the folder {folder} does not exist: create it first (mkdir -p {folder}) "
                      "or write somewhere else", param, ctx)
        return path


def choose_lab(backend: Backend, lab_name: str | None) -> str:
    """The lab a command acts on: the one named with --lab (it must exist), else the only
    lab running, else the default topology's."""
    labs = [entry.lab for entry in backend.list_labs()]
    if lab_name is not None:
        check_lab_name(lab_name, labs)
        return lab_name
    if len(labs) == 1:
        return labs[0]
    try:
        default = load_topology().name
    except LabError:
        default = None
    if len(labs) > 1 and default not in labs:
        raise RuntimeFailure(f"several labs are running ({', '.join(labs)}): choose one with --lab NAME")
    if default is None:
        raise RuntimeFailure("no lab is running and topology/default.yaml is not usable: give --lab NAME")
    return default


def check_lab_name(lab_name: str, labs: list[str]) -> None:
    if not lab_name.strip():
        raise UsageError("--lab needs a lab's name (`lab ls` lists the labs on this engine)")
    if lab_name not in labs:
        running = ", ".join(labs) or "none"
        raise UsageError(f"no lab named '{lab_name}' on this engine (labs: {running}); `lab ls` lists them")


def running_topology(backend: Backend, lab_name: str | None, file: Path | None = None,
                     instead: str = "bring it up again from a topology file") -> Lab:
    """The topology of the lab a command acts on: the file given, else the file the running lab
    was made from (the engine keeps its path). The one rule for every command that needs it;
    `instead` says what the user can do when that file cannot be read."""
    if file is not None:
        return load_topology(file)
    name = choose_lab(backend, lab_name)
    entry = next((e for e in backend.list_labs() if e.lab == name), None)
    if entry is None or entry.containers == 0:
        raise RuntimeFailure(f"lab '{name}' is not running: start it with `lab up`")
    if not entry.file or entry.file.startswith("<") or not Path(entry.file).is_file():
        raise RuntimeFailure(f"lab '{name}' was made from '{entry.file or 'an unknown file'}', which is not "
                             f"a readable topology file: {instead}")
    if entry.copy:
        return load_copy(entry.file, entry.copy, owner=entry.owner)
    return load_topology(entry.file)


def check_zones_with_bind(lab: Lab, backend: Backend) -> int:
    """Run the pre-flight (lab/preflight.py); raise TopologyError with BIND's refusals, at the
    topology lines that made them. Returns how many zones BIND accepted. `lab validate
    --deep` and `lab up` (before it changes anything) both run it."""
    from lab.plan.zones import all_zones
    from lab.preflight import bind_problems
    from lab.topology.yaml_source import read_yaml

    problems = bind_problems(lab, read_yaml(lab.file), backend)
    if problems:
        raise TopologyError(problems)
    return len(all_zones(lab))
