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

import re
from dataclasses import dataclass, field

import docker

from lab.errors import RuntimeFailure, UsageError
from lab.kinds import registry
from lab.kinds.registry import TOOLS_IMAGE
from lab.plan.model import LABEL_LAB
from lab.backends.docker.engine import ENGINE_ERRORS, engine_call
from lab.backends.docker.images import ensure_images
from lab.backends.docker.inspect import address_on_network, node_container
from lab.backends.docker.netns import LABEL_ROLE
from lab.backends.docker.objects import remove_container

NETEM_MISSING = ("this machine's kernel has no netem queueing discipline (tc says \"Specified qdisc kind "
                 "is unknown\"), so delay, jitter, loss, duplication, corruption and reordering cannot "
                 "be applied here; rate limits work (tbf)")
RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit)$")
TIME = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")
PERCENT = re.compile(r"^\d+(\.\d+)?%$")


@dataclass(frozen=True)
class Impairment:
    rate: str | None = None          # e.g. 2mbit
    delay: str | None = None         # e.g. 50ms
    jitter: str | None = None        # e.g. 10ms (with delay)
    loss: str | None = None          # e.g. 1%
    duplicate: str | None = None
    corrupt: str | None = None
    reorder: str | None = None

    @property
    def netem_words(self) -> list[str]:
        words = []
        if self.delay:
            words += ["delay", self.delay] + ([self.jitter] if self.jitter else [])
        for name in ("loss", "duplicate", "corrupt", "reorder"):
            if getattr(self, name):
                words += [name, getattr(self, name)]
        return words

    @property
    def empty(self) -> bool:
        return not any(vars(self).values())


def check_values(impairment: Impairment) -> None:
    """UsageError naming each value tc would not understand, with the form it wants."""
    problems = []
    if impairment.rate and not RATE.match(impairment.rate):
        problems.append(f"--rate {impairment.rate}: write it as a number and a unit, e.g. 2mbit or 500kbit")
    for name in ("delay", "jitter"):
        value = getattr(impairment, name)
        if value and not TIME.match(value):
            problems.append(f"--{name} {value}: write it as a number and a unit, e.g. 50ms")
    for name in ("loss", "duplicate", "corrupt", "reorder"):
        value = getattr(impairment, name)
        if value and not PERCENT.match(value):
            problems.append(f"--{name} {value}: write it as a percentage, e.g. 1%")
    if impairment.jitter and not impairment.delay:
        problems.append("--jitter needs --delay (jitter varies the delay)")
    if problems:
        raise UsageError("; ".join(problems))


def _rate_bytes_per_second(rate: str) -> float:
    number, unit = re.match(r"^([\d.]+)(\w+)$", rate).groups()
    return float(number) * {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[unit] / 8


def tc_script(impairment: Impairment) -> str:
    """The tc commands for one interface ($DEV): netem at the root (if asked) with tbf under it."""
    lines = ["tc qdisc del dev \"$DEV\" root 2>/dev/null || true"]
    burst = max(int(_rate_bytes_per_second(impairment.rate) / 100), 3200) if impairment.rate else 0
    tbf = f"tbf rate {impairment.rate} burst {burst} latency 200ms" if impairment.rate else ""
    if impairment.netem_words and tbf:
        lines.append(f"tc qdisc add dev \"$DEV\" root handle 1: netem {' '.join(impairment.netem_words)}")
        lines.append(f"tc qdisc add dev \"$DEV\" parent 1:1 handle 10: {tbf}")
    elif impairment.netem_words:
        lines.append(f"tc qdisc add dev \"$DEV\" root netem {' '.join(impairment.netem_words)}")
    elif tbf:
        lines.append(f"tc qdisc add dev \"$DEV\" root {tbf}")
    return "\n".join(lines)


# Finds the interface holding the node's address on the network, then runs the tc lines.
FIND_DEVICE = r"""
set -e
DEV=$(ip -o -4 addr show | awk -v a="$LAB_ADDRESS/" 'index($4, a) == 1 {print $2; exit}')
[ -n "$DEV" ] || { echo "no interface holds $LAB_ADDRESS" >&2; exit 3; }
"""


@dataclass
class Applied:
    node: str
    network: str
    interface: str
    qdiscs: list[str] = field(default_factory=list)   # `tc qdisc show` afterwards: what the kernel holds


def _run_helper(client: docker.DockerClient, lab: str, script: str, environment: dict,
                network_mode: str) -> tuple[int, str]:
    kind = registry.one_with_role(TOOLS_IMAGE).name   # any lab image has tc (iproute2); this one is small
    image = ensure_images(client, [kind])[kind]
    helper = None
    try:
        with engine_call("running a tc helper"):
            helper = client.containers.create(image, entrypoint=["/bin/sh", "-c", script], command=[],
                                              environment=environment, network_mode=network_mode,
                                              cap_add=["NET_ADMIN"], detach=True,
                                              labels={LABEL_LAB: lab, LABEL_ROLE: "impair"})
            helper.start()
            code = helper.wait(timeout=60).get("StatusCode", 1)
            return code, helper.logs().decode(errors="replace")
    finally:
        if helper is not None:
            remove_container(helper)


_netem_known: dict[str, bool] = {}


def netem_available(client: docker.DockerClient, lab: str) -> bool:
    """Whether the engine's kernel has netem: tried once, on a throwaway namespace's loopback."""
    if "netem" not in _netem_known:
        code, _ = _run_helper(client, lab, "tc qdisc add dev lo root netem delay 1ms", {}, "none")
        _netem_known["netem"] = code == 0
    return _netem_known["netem"]


def impair(client: docker.DockerClient, lab: str, node: str, network: str,
           impairment: Impairment | None) -> Applied:
    """Replace the impairments of node's interface on network (an empty one clears them;
    None only reads what is there)."""
    if impairment is not None:
        check_values(impairment)
        if impairment.netem_words and not netem_available(client, lab):
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

