"""Other ways to run a lab: renderings of its plan for other tools."""
