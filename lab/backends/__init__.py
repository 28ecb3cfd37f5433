"""Engines a lab runs on. Only lab.backends.docker imports the Docker SDK."""
