"""Node kinds: one module each, found by lab.kinds.registry (see there)."""
