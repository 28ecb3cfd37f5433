"""What routing adds to a trace, read from the running routers: each router's next hop as its
kernel has it now (so a trace after `lab link down` follows the new way), and the AS path
of the request from the first router that speaks BGP."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from lab.backends.protocol import Backend
from lab.firewall.path import FlowPath, NextHop, next_hop
from lab.routing.live import as_path_toward, kernel_next_hop
from lab.topology import Instance, Lab
from lab.topology.autonomy import routed_by_frr
from lab.trace.model import Step


def live_lookup(backend: Backend, lab: Lab) -> NextHop | None:
    """Ask FRR-routed routers their kernel's next hop; others keep the planner's static routes
    (which is what their kernels hold). None for a lab without autonomous systems."""
    if not any(routed_by_frr(lab, i) for i in lab.instances):
        return None

    def lookup(at: Instance, destination: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address | None:
        if routed_by_frr(lab, at):
            return kernel_next_hop(backend, lab.name, at.name, destination)
        return next_hop(lab, at, destination)
    return lookup


def as_path_note(backend: Backend, lab: Lab, path: FlowPath) -> tuple[str, str] | None:
    """('AS path 64601 64700', where it was read) from the first BGP router on the path."""
    first = next((hop.instance for hop in path.hops if routed_by_frr(lab, hop.instance)), None)
    if first is None or path.delivered is None:
        return None
    found = as_path_toward(backend, lab.name, first.name, path.delivered.destination)
    if found is None:
        return None
    own, ases = found
    shown = " ".join(str(a) for a in (own, *ases))
    return (f"AS path {shown}",
            f"{first.name}'s BGP best path toward {path.delivered.destination} (vtysh: show bgp "
            f"ipv{path.delivered.destination.version} unicast), after its own AS{own}")


def add_as_path(steps: list[Step], note: tuple[str, str] | None) -> None:
    for step in steps:
        if step.kind == "path" and note:
            step.detail = f"{step.detail}; {note[0]}" if step.detail else note[0]
            step.evidence.append(note[1])
        add_as_path(step.children, None)
