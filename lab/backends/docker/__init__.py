"""Runtime: the only package that talks to the Docker engine."""
