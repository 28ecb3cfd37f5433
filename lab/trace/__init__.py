"""Traces: real clients run inside the lab, real evidence read back into typed steps."""
