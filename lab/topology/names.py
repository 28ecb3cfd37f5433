"""Naming rules shared by validation, the planner and the runtime.

Kept in one place so that, for example, the name of a replica or of a derived
NS host is computed the same way everywhere.
"""

from __future__ import annotations

import re

NODE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
RECORD_NAME = re.compile(r"^(@|\*|(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
                         r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*)$")
DOMAIN_NAME = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ROOT = "."


def replica_names(node: str, replicas: int) -> list[str]:
    """Container-level names of a node: itself, or node-1..node-N when replicated."""
    return [node] if replicas == 1 else [f"{node}-{i}" for i in range(1, replicas + 1)]


def absolute(name: str, zone: str) -> str:
    """A record name or target as a fully qualified name with a trailing dot."""
    origin = "" if zone == ROOT else f"{zone}."
    if name == "@":
        return origin or ROOT
    if name.endswith("."):
        return name.lower()
    return f"{name}.{origin}".lower()


def ns_host(server: str, zone: str) -> str:
    """The derived NS host name of a server node for a zone (always inside the zone, with glue)."""
    # Root servers are named directly under the root ("root-1."), which the root
    # zone itself serves, so its glue needs no other zone to exist.
    return absolute(server, zone) if zone != ROOT else f"{server}."


def parent_zone(zone: str, zones: list[str]) -> str:
    """The nearest enclosing zone of the lab that delegates zone (the root when none)."""
    labels = zone.split(".")
    for i in range(1, len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in zones:
            return candidate
    return ROOT


def zone_of(fqdn: str, zones: list[str]) -> str | None:
    """The deepest zone of the lab that contains an absolute name (None: only the root)."""
    name = fqdn.rstrip(".")
    labels = name.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in zones:
            return candidate
    return None
