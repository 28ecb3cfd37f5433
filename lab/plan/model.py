"""What must exist for a lab: plain, immutable descriptions the runtime applies.

Nothing here knows about Docker's API; names and labels are chosen here so
that every backend (Docker today, a compose file, one day Kubernetes) agrees.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Mapping

LABEL_LAB = "lab.name"
LABEL_NODE = "lab.node"
LABEL_KIND = "lab.kind"
LABEL_NETWORK = "lab.network"
LABEL_HASH = "lab.hash"
LABEL_FILE = "lab.file"
LABEL_COPY = "lab.copy"        # a classroom copy's number: the running lab is copy N of lab.file
LABEL_OWNER = "lab.owner"      # whom that copy belongs to
LABEL_PROBE = "lab.probe"      # the readiness probe's words, joined by PROBE_SEPARATOR
PROBE_SEPARATOR = "\x1f"


LIVE_HASH_FILE = "live.hash"  # under /lab: which live files a running node has


def built_image_name(lab: str, node: str) -> str:
    """The repository a service's Dockerfile folder is built into (tag: a hash of the folder)."""
    return f"lab/{lab}-{node}"


def docker_name(lab: str, name: str) -> str:
    """Engine-side name of a lab object: prefixed so labs can run side by side."""
    return f"{lab}-{name}"


@dataclass(frozen=True)
class Probe:
    """A command run inside the container until it exits 0: the node is ready."""

    command: tuple[str, ...]
    timeout: float = 60.0
    what: str = ""


@dataclass(frozen=True)
class LabState:
    """Per-lab material made outside the pure planner and handed in: keys, certificates,
    passwords. Made once (see lab/state.py) and kept, so plans stay deterministic."""

    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendered:
    """What a kind's renderer adds to one node's plan."""

    files: Mapping[str, str] = field(default_factory=dict)        # under /lab; a change recreates the node
    live_files: Mapping[str, str] = field(default_factory=dict)   # under /lab; a change is applied in place
    reload: tuple[str, ...] = ()                                  # run in the node after live files change
    env: Mapping[str, str] = field(default_factory=dict)          # extra /lab/env lines
    capabilities: tuple[str, ...] = ()                            # beyond the kind's own


@dataclass(frozen=True)
class NetworkPlan:
    name: str            # topology name, e.g. "dmz"
    docker_name: str     # engine name, e.g. "shop-dmz"
    subnet: str
    gateway: str         # the engine's host-side address, kept off the lab's addresses
    labels: Mapping[str, str]
    subnet6: str | None = None    # its IPv6 prefix, when the network is dual-stack
    gateway6: str | None = None   # the engine's host-side IPv6 address there

    @property
    def subnets(self) -> set[str]:
        return {self.subnet, *([self.subnet6] if self.subnet6 else [])}


@dataclass(frozen=True)
class ContainerPlan:
    name: str                       # instance name and host name, e.g. "app-2"
    node: str                       # topology node, e.g. "app"
    kind: str
    docker_name: str                # e.g. "shop-app-2"
    service: str                    # services/<service>/ builds its image ("" when image or build is set)
    addresses: Mapping[str, str]    # docker network name -> address, in attach order
    stage: int                      # start order: lower stages are ready before higher ones start
    files: Mapping[str, str]        # path under /lab -> content
    probe: Probe
    capabilities: tuple[str, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    volumes: Mapping[str, str] = field(default_factory=dict)   # volume name -> mount path
    labels: Mapping[str, str] = field(default_factory=dict)
    live_files: Mapping[str, str] = field(default_factory=dict)  # path under /lab -> content, reloadable
    reload: tuple[str, ...] = ()     # command that applies changed live files without a restart
    depends_on: tuple[str, ...] = ()  # instances that must be ready before this one starts
    image: str | None = None         # your own service: a local image run instead of services/<service>
    build: str | None = None         # ... or a Dockerfile folder (absolute) the backend builds
    command: tuple[str, ...] | None = None  # the container's command (None: the image's CMD)
    addresses6: Mapping[str, str] = field(default_factory=dict)  # docker network name -> IPv6 address

    def live_files_marked(self) -> dict[str, str]:
        """The live files plus the marker saying which version of them the node holds."""
        return {**self.live_files, LIVE_HASH_FILE: self.live_hash() + "\n"}

    def all_files(self) -> dict[str, str]:
        """Everything that goes under /lab at creation."""
        return {**self.files, **self.live_files_marked()}

    def live_hash(self) -> str:
        """Changes that are applied in place (live files and how to reload them)."""
        payload = json.dumps({"files": dict(self.live_files), "reload": list(self.reload)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def config_hash(self, image: str) -> str:
        """Everything that, if changed, requires a new container."""
        payload = json.dumps({
            "image": image, "addresses": dict(self.addresses), "files": dict(self.files),
            "capabilities": list(self.capabilities), "sysctls": dict(self.sysctls),
            "volumes": dict(self.volumes), "service": self.service,
            # only when set, so the nodes of built-in kinds keep their hash (and stay as they run)
            **({"command": list(self.command)} if self.command is not None else {}),
            **({"addresses6": dict(self.addresses6)} if self.addresses6 else {}),
        }, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    lab: str
    file: str
    networks: tuple[NetworkPlan, ...]
    containers: tuple[ContainerPlan, ...]

    def container(self, name: str) -> ContainerPlan:
        for plan in self.containers:
            if plan.name == name:
                return plan
        raise KeyError(name)

    def stages(self) -> list[list[ContainerPlan]]:
        """Containers grouped by start stage, lowest first (for targets that only know
        stages, such as compose; `lab up` follows each container's depends_on instead)."""
        numbers = sorted({c.stage for c in self.containers})
        return [[c for c in self.containers if c.stage == n] for n in numbers]

    @property
    def services(self) -> list[str]:
        return sorted({c.service for c in self.containers})
