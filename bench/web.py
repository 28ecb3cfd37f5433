#!/usr/bin/env python3
"""Requests per second and latency through the load balancer, beside one app server alone.

In one run, on the default topology (renamed bench-web, so a user's lab is untouched):
  1. through the lb: wrk in the laptop, HTTPS to the lb (home router, ISP router, firewall,
     nginx with TLS, then one of the app replicas, then PostgreSQL);
  2. one app directly: the same wrk load over plain HTTP to app-1 from a helper container on
     the apps network (the firewall admits only the lb to the apps, so the laptop cannot).
Both fetch /api/products (one database query per request). wrk runs for --seconds with
--connections over 2 threads; the lab is removed afterwards (with its volume).

Usage: python3 bench/web.py [--seconds 10] [--connections 8] [--shift N] [--keep]
Traffic: none leaves the engine; the lab uses 198.18.0.0/15 and 100.64.0.0/10 only.
"""

from __future__ import annotations

import argparse
import re
import sys
from ipaddress import IPv4Network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.plan import make_plan  # noqa: E402
from lab.backends.docker import apply  # noqa: E402
from lab.backends.docker.engine import connect  # noqa: E402
from lab.backends.docker.helpers import run_helper  # noqa: E402
from lab.backends.docker.images import ensure_images  # noqa: E402
from lab.state import ensure_lab_state  # noqa: E402
from lab.topology import load_text  # noqa: E402
from lab.topology.model import KINDS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PATH = "/api/products"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def topology(shift: int) -> str:
    text = (ROOT / "topology" / "default.yaml").read_text().replace("name: shop", "name: bench-web", 1)
    if shift:
        pattern = re.compile(r"\b(100\.64|198\.18|198\.19)\.(\d+)\.")
        text = pattern.sub(lambda m: f"{m.group(1)}.{int(m.group(2)) + 40 * shift}.", text)
    return text


def wrk_command(url: str, seconds: int, connections: int, host: str | None = None) -> list[str]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if host:
        command += ["-H", f"Host: {host}"]
    return command + [url]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, latency percentiles (ms) and errors from wrk's --latency report."""
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        result[f"p{pct}"] = float(match.group(1)) * UNITS[match.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["errors"] = float(errors.group(1) if errors else 0) + (sum(map(int, socket.groups())) if socket else 0)
    result["requests"] = float(re.search(r"(\d+) requests in", output).group(1))
    return result


def free_address(lab, network: str) -> str:
    used = {str(a) for i in lab.instances for n, a in i.addresses.items() if n == network}
    used.add(str(lab.gateways[network]))
    for host in reversed(list(IPv4Network(str(lab.spec.networks[network].subnet)).hosts())):
        if str(host) not in used:
            return str(host)
    raise SystemExit(f"no free address on {network} for the helper")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--shift", type=int, default=0, help="move subnets by 40*N in the third octet")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()

    client = connect()
    images = ensure_images(client, KINDS)
    lab = load_text(topology(args.shift), "<bench>")
    print(f"bringing up lab {lab.name} ...", flush=True)
    apply.up(client, make_plan(lab, ensure_lab_state(lab)))
    try:
        lb = str(lab.instance("lb").address_on("dmz"))
        app = str(lab.instance("app-1").address_on("apps"))
        laptop = client.containers.get(f"{lab.name}-laptop")
        # wrk cannot pin a name to an address: connect to the lb's address with the Host header
        # (the certificate covers the lb's address too; wrk does not verify it anyway).
        result = laptop.exec_run(wrk_command(f"https://{lb}{PATH}", args.seconds, args.connections,
                                             "www.shop.test"))
        through_lb = parse_wrk(result.output.decode())
        code, output = run_helper(client, lab.name, f"{lab.name}-apps", free_address(lab, "apps"),
                                  images["client"],
                                  wrk_command(f"http://{app}:8000{PATH}", args.seconds, args.connections),
                                  timeout=args.seconds + 60)
        if code != 0:
            raise SystemExit(f"wrk against app-1 failed:\n{output}")
        direct = parse_wrk(output)
    finally:
        if not args.keep:
            apply.down(client, lab.name, volumes=True)

    print(f"\nGET {PATH}, {args.seconds} s, {args.connections} connections, 2 wrk threads\n")
    header = f"{'path':<44} {'req/s':>8} {'p50 ms':>8} {'p75 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}"
    print(header)
    print("-" * len(header))
    for label, row in (("laptop -> routers -> fw -> lb (TLS) -> 3 apps", through_lb),
                       ("helper on apps net -> app-1 (HTTP)", direct)):
        print(f"{label:<44} {row['rps']:>8.0f} {row['p50']:>8.2f} {row['p75']:>8.2f} {row['p90']:>8.2f} "
              f"{row['p99']:>8.2f} {row['errors']:>7.0f}")


if __name__ == "__main__":
    main()
