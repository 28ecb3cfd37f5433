"""`python3 -m lab` runs the `lab` command (handy where the script is not on PATH)."""

from lab.cli import main

main()
