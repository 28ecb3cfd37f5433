"""Per-lab state kept on the host: material that must outlive containers (keys, passwords).

Lives in $LAB_STATE_DIR/<lab>/ (default ~/.local/state/lab/<lab>/). Made at the
first `lab up` and reused, so plans stay deterministic across runs. Nothing
here talks to the engine.
"""

from __future__ import annotations

import os
from pathlib import Path

from lab.plan.model import LabState
from lab.topology import Lab


def state_root() -> Path:
    base = os.environ.get("LAB_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "lab")
    return Path(base)


def state_dir(lab_name: str) -> Path:
    return state_root() / lab_name


def ensure_lab_state(lab: Lab) -> LabState:
    """The lab's state, made on first use. Nothing is needed yet beyond the directory."""
    directory = state_dir(lab.name)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return LabState()
