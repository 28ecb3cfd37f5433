"""The registry of node kinds: everything about a kind, declared once, asked by name or role.

Each kind is one module in this package that calls `register(Kind(...))`;
the registry finds them itself (every module of lab/kinds/ is loaded on the
first question), so adding a kind means adding a module, a services/ folder and
its entry in the topology model, and nothing else. The planner, state, graph,
traces, checks, export and the engine backend ask here; none of them names a
kind. They ask by *role* when they need "the resolver" or "a node that
filters", so a new kind can take a role without anyone else changing.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:   # only for annotations: the planner imports this module, not the reverse
    from lab.plan.model import LabState, Probe, Rendered
    from lab.topology import Instance, Lab

# -- roles: what other parts of the lab rely on a kind for ------------------
TRAFFIC_SOURCE = "traffic-source"      # default node of `lab trace`, `lab check`, `lab dig`
RECURSIVE_RESOLVER = "recursive-resolver"
ROOT_SERVER = "root-server"            # a resolver primes from these; zones hang below them
AUTHORITATIVE_DNS = "authoritative-dns"
PACKET_FILTER = "packet-filter"        # filters forwarded traffic with the topology's rules
HTTP_BALANCER = "http-balancer"        # the lb a trace follows to its upstreams
HTTP_UPSTREAM = "http-upstream"        # serves HTTP behind a balancer (a trace's server step)
SQL_DATABASE = "sql-database"          # holds a database other nodes use (sql checks)
TOOLS_IMAGE = "tools-image"            # its image is small and has tcpdump and tc: helpers run it

# -- secrets a kind needs from the lab's state (lab/state.py makes them) -----
LAB_CA = "lab-ca"                      # the lab CA's certificate, to trust it
TLS_CERTIFICATE = "tls-certificate"    # a key and a certificate for every name pointing at it
DB_PASSWORD = "db-password"            # the password of the database it serves

Renderer = Callable[["Lab", "Instance", "LabState"], "Rendered"]
NeedsFn = Callable[["Lab", "Instance"], "list[Instance]"]
NodeFn = Callable[[Any], Any]


def _nothing(lab: Lab, instance: Instance) -> list[Instance]:
    return []


def _no_env(spec: Any) -> dict[str, str]:
    return {}


def _nothing_of(spec: Any) -> None:
    return None


@dataclass(frozen=True)
class OwnImage:
    """A node that runs its own image instead of its kind's services/ folder."""

    image: str | None = None        # a local image reference (never pulled)
    build: str | None = None        # an absolute folder with a Dockerfile, built by the backend


@dataclass(frozen=True)
class Kind:
    """One kind of node, as a whole. Functions take the node's spec from the topology model."""

    name: str
    folder: str | None                  # image: services/<folder> (kinds may share one); None: own_image
    stage: int                          # shown order of starting; dependencies decide the real one
    probe: Probe                        # readiness; '{name}' fields are filled from probe_fields
    node_probe: Optional[NodeFn] = None  # or a probe made from the node's spec
    roles: frozenset[str] = frozenset()
    capabilities: tuple[str, ...] = ()
    forwards: bool = False              # routes packets between networks (NET_ADMIN, ip_forward)
    data_volume: str | None = None      # mount path of the node's named data volume
    secrets: frozenset[str] = frozenset()
    render: Optional[Renderer] = None   # the kind's own files under /lab (None: only the common ones)
    needs: NeedsFn = _nothing           # the instances it uses at start (dependency graph)
    env: NodeFn = _no_env               # extra environment from the node's spec
    probe_fields: NodeFn = _no_env      # values for the probe's '{...}' fields
    http_port: NodeFn = lambda spec: 80  # the port it serves HTTP on, behind a balancer
    database_of: NodeFn = _nothing_of   # the database node it uses (its `database:` wiring)
    own_image: Optional[Callable[[Any, str], OwnImage]] = None  # (spec, topology folder): its image
    command: NodeFn = _nothing_of       # the container's command (None: the image's own)
    wheelhouse: bool = False            # its image installs Python wheels built on the host
    colour: str = "#bab0ac"             # in pictures (lab graph)
    shape: str = "box"                  # in pictures: box, round, cylinder or hexagon

    def has(self, role: str) -> bool:
        return role in self.roles

    def probe_for(self, spec: Any) -> Probe:
        if self.node_probe is not None:
            return self.node_probe(spec)
        fields = self.probe_fields(spec)
        if not fields:
            return self.probe
        command = tuple(part.format(**fields) for part in self.probe.command)
        return dataclasses.replace(self.probe, command=command)


_KINDS: dict[str, Kind] = {}
_loaded = False
_NOT_KINDS = {"registry"}


def register(kind: Kind) -> Kind:
    """Add a kind (its module calls this when loaded; tests may add their own)."""
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module("lab.kinds")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _NOT_KINDS and not module.name.startswith("_"):
            importlib.import_module(f"lab.kinds.{module.name}")


def get(name: str) -> Kind:
    _load()
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"no kind named '{name}' is registered (lab/kinds/)") from None


def all_kinds() -> list[Kind]:
    _load()
    return list(_KINDS.values())


def names() -> list[str]:
    return [kind.name for kind in all_kinds()]


def with_role(role: str) -> list[Kind]:
    return [kind for kind in all_kinds() if role in kind.roles]


def kinds_with_role(role: str) -> frozenset[str]:
    return frozenset(kind.name for kind in with_role(role))


def is_a(kind_name: str, role: str) -> bool:
    """Whether a kind takes a role; an unknown kind takes none."""
    _load()
    kind = _KINDS.get(kind_name)
    return kind is not None and role in kind.roles


def one_with_role(role: str) -> Kind:
    """The first registered kind taking a role (for helpers that need any such image)."""
    found = with_role(role)
    if not found:
        raise KeyError(f"no registered kind takes the role '{role}'")
    return found[0]
