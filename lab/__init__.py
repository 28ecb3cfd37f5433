"""lab: a containerised mini-internet you can run, trace and break."""

__version__ = "0.1.0"
