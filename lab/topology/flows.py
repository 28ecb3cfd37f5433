"""DNS traffic the lab needs, checked against its own firewall rules before anything starts.

Islands (reach.py) say whether a path exists; a firewall on that path may still
drop it. A resolver that cannot ask its root servers, or a client that cannot
ask its resolver, would pass every other check and then fail `lab up` when the
resolver's readiness probe times out. The firewall's own model
(lab.firewall: the path with NAT applied, then the first matching rule of each
firewall on it) says so from the file alone.
"""

from __future__ import annotations

from lab.errors import LabError
from lab.topology.errors import Problem
from lab.topology.lab import Lab
from lab.topology.model import CLIENT_KIND, FIREWALL_KIND, RESOLVER_KIND, ROOT_KIND
from lab.topology.yaml_source import PathKey, Source, dotted

DNS_PORT = 53
VERBS = {"deny": "drops", "reject": "rejects", "drop": "drops"}


class DnsFlows:
    def __init__(self, lab: Lab, source: Source):
        # Imported here, not at the top: lab.firewall reads the topology's model modules, whose
        # package (lab.topology) imports this module; at the top, importing lab.firewall first
        # (a test, a tool) met a half-made lab.firewall.explain.
        from lab.firewall.explain import computed_verdicts
        from lab.firewall.path import flow_path
        self.lab, self.source = lab, source
        self.flow_path, self.computed_verdicts = flow_path, computed_verdicts
        self.problems: list[Problem] = []

    def blocking(self, source: str, target: str):
        """The verdict that stops a DNS query from source to target, or None if it passes."""
        try:
            first, second = self.lab.instances_of(source)[0], self.lab.instances_of(target)[0]
            path = self.flow_path(self.lab, first, second, "udp", DNS_PORT)
        except LabError:
            return None   # no route at all is reported by the reachability checks
        verdicts = self.computed_verdicts(self.lab, path)
        return verdicts[-1] if verdicts and verdicts[-1].action not in ("allow", "accept") else None

    def need(self, path: PathKey, source: str, target: str, role: str, at_key: bool) -> None:
        verdict = self.blocking(source, target)
        if verdict is not None:
            self.report(path, source, target, role, verdict, at_key)

    def report(self, path: PathKey, source: str, target: str, role: str, verdict, at_key: bool) -> None:
        line, column = self.source.mark(path, at_key)
        self.problems.append(Problem(line, column, dotted(path), (
            f"'{source}' cannot ask {role} '{target}' (DNS, udp port 53): firewall "
            f"'{verdict.firewall}' {VERBS.get(verdict.action, verdict.action)} it (rule '{verdict.rule.name}'); add a rule "
            f"before it, like {{name: dns-{source}, from: {source}, to: {target}, proto: udp, "
            "ports: 53}"), self.source.file))

    def run(self) -> list[Problem]:
        spec = self.lab.spec
        roots = [name for name, node in spec.nodes.items() if node.kind == ROOT_KIND]
        for name, node in spec.nodes.items():
            if node.kind == RESOLVER_KIND:
                for root in node.roots or roots:
                    self.need(("nodes", name), name, root, "the root server", at_key=True)
        for zone, data in spec.zones.items():
            for i, server in enumerate(data.servers):
                for name, node in spec.nodes.items():
                    if node.kind == RESOLVER_KIND:
                        self.need(("zones", zone, "servers", i), name, server,
                                  f"the server of {zone}", at_key=False)
        if spec.zones:
            self.clients_to_resolvers()
        return self.problems

    def clients_to_resolvers(self) -> None:
        # A firewall tells clients apart only by the networks they are on, unless a rule
        # names the client itself: one client per such group is enough (5,000 clients cost
        # as much as the handful of groups they form).
        named = {side for node in self.lab.spec.nodes.values() if node.kind == FIREWALL_KIND
                 for rule in node.rules for side in (rule.from_, rule.to)}
        seen: dict[tuple, object] = {}
        for name, node in self.lab.spec.nodes.items():
            resolver = self.lab.resolver_of(name) if node.kind == CLIENT_KIND else None
            if resolver is None:
                continue
            group = (name,) if name in named else (tuple(node.networks), resolver)
            if group not in seen:
                verdict = self.blocking(name, resolver)
                seen[group] = verdict
            if seen[group] is not None:
                self.report(("nodes", name), name, resolver, "its resolver", seen[group], at_key=True)


def check_dns_flows(lab: Lab, source: Source) -> list[Problem]:
    """Every DNS query the lab depends on that one of its firewalls would stop."""
    if not any(node.kind == FIREWALL_KIND for node in lab.spec.nodes.values()):
        return []
    return DnsFlows(lab, source).run()
