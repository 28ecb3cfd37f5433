"""The project's one error hierarchy.

The CLI catches only LabError; anything else is a bug and shows a traceback.
Exit codes are part of the contract (see README): 2 for a bad topology, 1 for a
runtime failure.
"""


class LabError(Exception):
    """Base of every error a user can act on."""

    exit_code = 1


class RuntimeFailure(LabError):
    """The engine or a node failed while applying or inspecting a lab."""

    exit_code = 1


class UsageError(LabError):
    """The command line asks for something that cannot be (an unknown lab or node, a bad URL): exit 2."""

    exit_code = 2


class LabBusy(RuntimeFailure):
    """Another command is changing the same lab right now."""


class NotSupported(RuntimeFailure):
    """The engine a lab runs on cannot do this yet (said in one sentence, naming the engine)."""
