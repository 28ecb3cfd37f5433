"""Config files of routers and firewalls: their iptables rules, compiled from the topology.

Both files are live files: editing rules and running `lab up` copies them into
the running node and reloads them atomically (iptables-restore); the node is
not restarted and connections that stay allowed survive (conntrack keeps them).

- iptables.rules          the rule set without LOG lines: lab-init applies it at start,
                          so the node never runs unfiltered, even on a kernel without LOG.
- iptables-logging.rules  the same with LOG lines before the rules that ask for `log: true`;
                          `lab-firewall-load` (services/router) applies it when the kernel
                          accepts LOG, else keeps the first and says so.
"""

from __future__ import annotations

from lab.firewall.policy import node_policy
from lab.kinds import registry
from lab.kinds.registry import PACKET_FILTER
from lab.plan.iptables import render_rules
from lab.plan.model import LabState, Rendered
from lab.plan.seal import raw_table
from lab.topology import Instance, Lab

RULES_FILE = "iptables.rules"
LOGGING_RULES_FILE = "iptables-logging.rules"
RULES6_FILE = "ip6tables.rules"            # the same intent for IPv6, when the lab is dual-stack
LOGGING_RULES6_FILE = "ip6tables-logging.rules"
RELOAD = ("lab-firewall-load",)


def render(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    policy = node_policy(lab, instance.node)
    filtering = registry.is_a(instance.kind, PACKET_FILTER)
    # A firewall filters forwarded traffic to the engine's gateways itself (rule
    # engine-gateway); a plain router drops it in the raw table.
    seal = "\n".join(raw_table(lab.gateways.values(), forwards_unfiltered=not filtering)) + "\n"
    live = {RULES_FILE: render_rules(policy, filtering, logging=False) + seal,
            LOGGING_RULES_FILE: render_rules(policy, filtering, logging=True) + seal}
    if instance.addresses6:
        seal6 = "\n".join(raw_table(lab.gateways6.values(), not filtering, family=6)) + "\n"
        live |= {RULES6_FILE: render_rules(policy, filtering, logging=False, family=6) + seal6,
                 LOGGING_RULES6_FILE: render_rules(policy, filtering, logging=True, family=6) + seal6}
    return Rendered(live_files=live, reload=RELOAD)


__all__ = ["Rendered", "render"]
