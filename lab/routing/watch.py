"""Watching routing converge: poll what the routers say until a condition holds, and time it.

Used by the integration tests and bench/routing.py. Every answer is read from FRR at the
moment of asking; the time is the wall clock between the start and the first poll that saw
the condition (so it is an upper bound, by at most one poll interval plus one vtysh call).
"""

from __future__ import annotations

import time
from ipaddress import IPv4Address
from typing import Callable

from lab.backends.protocol import Backend
from lab.errors import LabError, RuntimeFailure
from lab.routing.live import as_path_toward, sessions
from lab.topology import Lab
from lab.topology.autonomy import routed_by_frr

POLL_SECONDS = 0.2


def frr_routers(lab: Lab) -> list[str]:
    return [i.name for i in lab.instances if routed_by_frr(lab, i)]


def session_states(backend: Backend, lab: Lab) -> dict[str, dict[str, str]]:
    """router -> {neighbour description: state}, for every router running FRR."""
    states = {}
    for router in frr_routers(lab):
        try:
            states[router] = {s.name or s.neighbor: s.state for s in sessions(backend, lab.name, router)}
        except LabError as error:   # bgpd not answering yet counts as not established
            states[router] = {"(bgpd)": str(error)}
    return states


def not_established(states: dict[str, dict[str, str]]) -> list[str]:
    return [f"{router}->{name}: {state}" for router, peers in states.items()
            for name, state in peers.items() if state != "Established"]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until condition() first held; RuntimeFailure naming `what` after timeout."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeFailure(f"{what}: not within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def wait_for_sessions(backend: Backend, lab: Lab, timeout: float = 120.0) -> float:
    last: list[list[str]] = [[]]

    def all_up() -> bool:
        last[0] = not_established(session_states(backend, lab))
        return not last[0]
    try:
        return wait_until(all_up, timeout, "BGP sessions established")
    except RuntimeFailure as error:
        raise RuntimeFailure(f"{error}; still down: {', '.join(last[0])}") from None


def best_as_path(backend: Backend, lab: Lab, router: str, address: IPv4Address) -> tuple[int, ...] | None:
    """The router's own AS followed by its BGP best path toward address (None: no route)."""
    found = as_path_toward(backend, lab.name, router, address)
    return None if found is None else (found[0], *found[1])


def wait_for_as_path(backend: Backend, lab: Lab, router: str, address: IPv4Address,
                     wanted: Callable[[tuple[int, ...] | None], bool], timeout: float = 60.0) -> float:
    return wait_until(lambda: wanted(best_as_path(backend, lab, router, address)), timeout,
                      f"{router}'s AS path toward {address} changing as expected")
