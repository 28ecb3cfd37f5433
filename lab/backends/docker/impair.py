"""Link impairments at run time: `lab impair NODE NETWORK --rate 2mbit --delay 50ms ...`.

Each is a queueing discipline on the node's interface of that network, set
from outside by a short-lived helper in the node's namespace (NET_ADMIN), like
its routes: the node itself needs no capability. Rate uses tbf, which every
kernel has; delay, jitter, loss, duplication, corruption and reordering need
netem, which some kernels lack. Whether netem exists is asked of the kernel
once (a helper with a network namespace of its own tries it on its loopback),
and what cannot work is said in one sentence instead of failing half way.
Impairments shape what the node sends on that interface (egress).
"""

from __future__ import annotations

from typing import Callable

import docker

from lab.errors import RuntimeFailure
from lab.kinds import registry
from lab.kinds.registry import TOOLS_IMAGE
from lab.impair import NETEM_MISSING, Applied, Impairment, check_values, tc_script
from lab.backends.docker.engine import ENGINE_ERRORS
from lab.backends.docker.helpers import run_in_namespace
from lab.backends.docker.images import ensure_images
from lab.backends.docker.inspect import address_on_network, node_container



# Finds the interface holding the node's address on the network, then runs the tc lines.
FIND_DEVICE = r"""
set -e
DEV=$(ip -o -4 addr show | awk -v a="$LAB_ADDRESS/" 'index($4, a) == 1 {print $2; exit}')
[ -n "$DEV" ] || { echo "no interface holds $LAB_ADDRESS" >&2; exit 3; }
"""


def _run_helper(client: docker.DockerClient, lab: str, script: str, environment: dict,
                network_mode: str) -> tuple[int, str]:
    kind = registry.one_with_role(TOOLS_IMAGE).name   # any lab image has tc (iproute2); this one is small
    image = ensure_images(client, [kind])[kind]
    code, stdout, stderr = run_in_namespace(client, lab, "impair", image, script, network_mode, ["NET_ADMIN"],
                                            environment)
    return code, stdout + stderr


def probe_netem(client: docker.DockerClient, lab: str) -> bool:
    """Whether the engine's kernel has netem: tried on a throwaway namespace's loopback
    (the backend asks once and keeps the answer)."""
    code, _ = _run_helper(client, lab, "tc qdisc add dev lo root netem delay 1ms", {}, "none")
    return code == 0


def impair(client: docker.DockerClient, lab: str, node: str, network: str,
           impairment: Impairment | None, netem_available: Callable[[], bool]) -> Applied:
    """Replace the impairments of node's interface on network (an empty one clears them;
    None only reads what is there)."""
    if impairment is not None:
        check_values(impairment)
        if impairment.netem_words and not netem_available():
            raise RuntimeFailure(f"cannot impair {node}:{network}: {NETEM_MISSING}")
    container = node_container(client, lab, node)
    address = address_on_network(container, lab, network)
    change = tc_script(impairment) if impairment is not None else ""
    script = FIND_DEVICE + change + "\necho \"device $DEV\"\ntc qdisc show dev \"$DEV\"\n"
    try:
        code, output = _run_helper(client, lab, script, {"LAB_ADDRESS": address}, f"container:{container.id}")
    except ENGINE_ERRORS as error:
        raise RuntimeFailure(f"cannot impair {node}:{network}: {error}") from error
    if code != 0:
        raise RuntimeFailure(f"cannot impair {node}:{network}: tc said: {output.strip()[:300]}")
    lines = output.strip().splitlines()
    interface = next((line.split()[1] for line in lines if line.startswith("device ")), "?")
    return Applied(node, network, interface, [line for line in lines if line.startswith("qdisc")])



# Takes the node's interface on the network down or up; prints the device and its new state.
LINK_SCRIPT = FIND_DEVICE + r"""
ip link set dev "$DEV" "$LAB_LINK"
# An interface comes up a moment after it is set up (carrier): report the state it reaches,
# waiting up to 2 s, so what is printed is what the kernel then says.
tries=0
while [ "$(cat /sys/class/net/$DEV/operstate)" != "$LAB_LINK" ] && [ "$tries" -lt 20 ]; do
  tries=$((tries + 1)); sleep 0.1
done
echo "device $DEV $(cat /sys/class/net/$DEV/operstate)"
"""


def set_link(client: docker.DockerClient, lab: str, node: str, network: str, up: bool) -> tuple[str, str]:
    """Take node's interface on network down (or up again), from outside like an impairment:
    (the interface, the state the kernel now reports)."""
    container = node_container(client, lab, node)
    address = address_on_network(container, lab, network)
    what = "up" if up else "down"
    try:
        code, output = _run_helper(client, lab, LINK_SCRIPT, {"LAB_ADDRESS": address, "LAB_LINK": what},
                                   f"container:{container.id}")
    except ENGINE_ERRORS as error:
        raise RuntimeFailure(f"cannot take {node}:{network} {what}: {error}") from error
    line = next((line for line in output.splitlines() if line.startswith("device ")), "")
    if code != 0 or not line:
        raise RuntimeFailure(f"cannot take {node}:{network} {what}: {output.strip()[:300]}")
    _, interface, state = line.split()
    return interface, state
