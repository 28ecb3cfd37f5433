"""Generated topologies of any size, for tests and benches (bench/up_down.py imports this)."""

from __future__ import annotations


def generated_topology(nodes: int, app_every: int = 3) -> str:
    """A chain of networks joined by routers, filled with clients and app servers (one host
    in app_every is an app server)."""
    per_network = 12
    networks = max(2, -(-nodes // per_network))
    lines = [f"name: bench{nodes}", "networks:"]
    lines += [f"  n{i}: {{subnet: 198.19.{i}.0/24}}" for i in range(networks)]
    lines.append("nodes:")
    count = 0
    for i in range(networks - 1):
        lines += [f"  r{i}:", "    kind: router", f"    networks: [n{i}, n{i + 1}]"]
        count += 1
    i = 0
    while count < nodes:
        kind = "app" if i % app_every == 0 else "client"
        lines += [f"  h{i}:", f"    kind: {kind}", f"    networks: [n{i % networks}]"]
        count += 1
        i += 1
    return "\n".join(lines) + "\n"


def generated_as_chain(systems: int, hosts: int = 3) -> str:
    """A chain of autonomous systems, each the customer of the one before: an access network,
    a line to the next AS, a router joining them (and the previous AS's line), a few hosts."""
    lines = [f"name: aschain{systems}", "autonomous_systems:"]
    lines += [f"  s{i}: {{number: {64600 + i}" + (f", providers: [s{i - 1}]" if i else "") + "}"
              for i in range(systems)]
    lines.append("networks:")
    for i in range(systems):
        lines += [f"  a{i}: {{subnet: 198.19.{i}.0/24, as: s{i}}}", f"  l{i}: {{subnet: 198.19.{100 + i}.0/24, as: s{i}}}"]
    lines += ["nodes:", "  pc: {kind: client, networks: [a0]}"]
    for i in range(systems):
        networks = [f"a{i}", f"l{i}"] + ([f"l{i - 1}"] if i else [])
        lines += [f"  r{i}:", "    kind: router", f"    as: s{i}", f"    networks: [{', '.join(networks)}]"]
        lines += [f"  h{i}x{j}: {{kind: client, networks: [a{i}]}}" for j in range(hosts)]
    return "\n".join(lines) + "\n"
