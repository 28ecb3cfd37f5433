"""Watching routing converge: poll what the routers say until a condition holds, and time it.

Used by the integration tests and bench/routing.py. Every answer is read from FRR at the
moment of asking; the time is the wall clock between the start and the first poll that saw
the condition (so it is an upper bound, by at most one poll interval plus one vtysh call).
"""

from __future__ import annotations

import time
from ipaddress import IPv4Address, IPv6Address
from typing import Callable, Iterator

from lab.backends.protocol import Backend
from lab.errors import LabError, RuntimeFailure
from lab.routing.live import as_path_toward, routing_table, sessions
from lab.topology import Lab
from lab.topology.autonomy import routed_by_frr

POLL_SECONDS = 0.2


def frr_routers(lab: Lab) -> list[str]:
    return [i.name for i in lab.instances if routed_by_frr(lab, i)]


def session_states(backend: Backend, lab: Lab) -> dict[str, dict[str, str]]:
    """router -> {"neighbour description IPvN": state}, for every router running FRR; a
    dual-stack router has one session per family to each neighbour."""
    states = {}
    for router in frr_routers(lab):
        try:
            states[router] = {f"{s.name or s.neighbor} IPv{s.family}": s.state
                              for s in sessions(backend, lab.name, router)}
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


def wait_for_each(conditions: dict[str, Callable[[], bool]], timeout: float, what: str) -> dict[str, float]:
    """Seconds until each condition first held, all timed from the same start (polled together,
    so one slow condition does not delay the others' times); RuntimeFailure naming the ones
    still unmet after timeout."""
    started, seen = time.monotonic(), {}
    while True:
        for name, condition in conditions.items():
            if name not in seen and condition():
                seen[name] = time.monotonic() - started
        if len(seen) == len(conditions):
            return seen
        if time.monotonic() - started > timeout:
            missing = ", ".join(name for name in conditions if name not in seen)
            raise RuntimeFailure(f"{what}: not within {timeout:.0f} s for {missing}")
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


def best_as_path(backend: Backend, lab: Lab, router: str,
                 address: IPv4Address | IPv6Address) -> tuple[int, ...] | None:
    """The router's own AS followed by its BGP best path toward address (None: no route), from
    the BGP table of the address's family."""
    found = as_path_toward(backend, lab.name, router, address)
    return None if found is None else (found[0], *found[1])


def wait_for_as_path(backend: Backend, lab: Lab, router: str, address: IPv4Address | IPv6Address,
                     wanted: Callable[[tuple[int, ...] | None], bool], timeout: float = 60.0) -> float:
    return wait_until(lambda: wanted(best_as_path(backend, lab, router, address)), timeout,
                      f"{router}'s AS path toward {address} changing as expected")


def selected_routes(backend: Backend, lab_name: str, node: str) -> dict[str, str]:
    """prefix -> the route in use, in words ("bgp via 198.18.34.2, AS path 64602 64700")."""
    table = routing_table(backend, lab_name, node)
    words = {}
    for route in table.routes:
        if route.selected:
            via = f" via {route.via}" if route.via else ""
            path = f", AS path {' '.join(map(str, route.as_path))}" if route.as_path else ""
            words[route.prefix] = f"{route.origin}{via}{path}"
    return words


def watch_changes(backend: Backend, lab_name: str, node: str, before: dict[str, str],
                  quiet: float = 5.0, timeout: float = 60.0) -> Iterator[tuple[float, str, str | None, str | None]]:
    """(seconds since the start, prefix, route before, route now) for each change of node's table,
    polled until nothing changed for `quiet` seconds (or `timeout` passed)."""
    started = last_change = time.monotonic()
    current = before
    while time.monotonic() - last_change < quiet and time.monotonic() - started < timeout:
        time.sleep(POLL_SECONDS)
        seen = selected_routes(backend, lab_name, node)
        now = time.monotonic() - started
        for prefix in sorted(set(current) | set(seen)):
            if current.get(prefix) != seen.get(prefix):
                last_change = time.monotonic()
                yield now, prefix, current.get(prefix), seen.get(prefix)
        current = seen
