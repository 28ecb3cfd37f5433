"""The `lab` command line: `main` is the group (lab/cli/app.py assembles it from the command modules)."""

from lab.cli.app import main

__all__ = ["main"]
