"""The planner: a pure function from a resolved Lab to what must exist.

Render, then run: each container gets its configuration as files under /lab
(env, routes, resolv.conf, and kind configs) and configures itself from them
at start, so the same plan can drive Docker today and other backends later.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from lab.pki_hash import subject_hash
from lab.kinds import registry
from lab.kinds.registry import RECURSIVE_RESOLVER
from lab.plan.dependencies import dependencies
from lab.plan.model import (LABEL_COPY, LABEL_FILE, LABEL_KIND, LABEL_LAB, LABEL_NETWORK, LABEL_NODE, LABEL_OWNER,
                            ContainerPlan, LabState, NetworkPlan, Plan, Probe, Rendered, docker_name)
from lab.topology.routes import routes_for
from lab.plan.seal import SEAL6_FILE, SEAL_FILE, render_seal6_rules, render_seal_rules
from lab.topology import Instance, Lab

CA_FILE = "ca.crt"   # the lab CA's certificate: in the lab's state and under every node's /lab
CA_HASH_FILE = "ca.hash"   # its OpenSSL subject hash, so no node runs openssl at start to learn it

__all__ = ["ContainerPlan", "LabState", "NetworkPlan", "Plan", "Probe", "Rendered", "make_plan",
           "docker_name"]


def _absolute(file: str) -> str:
    return str(Path(file).resolve()) if not file.startswith("<") else file


def _resolver_address(lab: Lab, instance: Instance) -> str | None:
    if registry.is_a(instance.kind, RECURSIVE_RESOLVER):
        return "127.0.0.1"
    chosen = lab.resolver_of(instance.node)
    if chosen is None:
        return None
    return str(lab.instances_of(chosen)[0].first_address)


def render_resolv_conf(lab: Lab, instance: Instance) -> str:
    address = _resolver_address(lab, instance)
    if address is None:
        # Never fall back to the engine's embedded DNS: a lab without DNS has none.
        return "# this lab has no resolver for this node: names do not resolve\noptions timeout:1 attempts:1\n"
    zones = list(lab.spec.zones)
    search = f"search {zones[-1]}\n" if zones else ""
    return f"# the lab's own resolver\nnameserver {address}\n{search}options timeout:2 attempts:2\n"


def render_env(lab: Lab, instance: Instance, extra: dict | None = None) -> str:
    node = lab.spec.nodes[instance.node]
    kind = registry.get(instance.kind)
    values = {"LAB_LAB": lab.name, "LAB_NODE": instance.name, "LAB_KIND": instance.kind,
              # nodes without NET_ADMIN get their routes from the runtime
              "LAB_ROUTES_BY": "self" if kind.forwards else "runtime",
              **kind.env(node)}
    if instance.replica is not None:
        values["LAB_REPLICA"] = str(instance.replica)
    values.update(extra or {})
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _container_plan(lab: Lab, instance: Instance, state: LabState) -> ContainerPlan:
    kind = registry.get(instance.kind)
    rendered = kind.render(lab, instance, state) if kind.render else Rendered()
    routes = "".join(f"{line}\n" for line in routes_for(lab, instance))
    files = {"env": render_env(lab, instance, dict(rendered.env)), "routes": routes,
             "resolv.conf": render_resolv_conf(lab, instance), **rendered.files}
    if state.values.get(CA_FILE):   # every node trusts the lab CA (services/base/bin/lab-trust-ca)
        files[CA_FILE] = state.values[CA_FILE]
        files[CA_HASH_FILE] = f"{subject_hash(state.values[CA_FILE])}\n"
    if not kind.forwards:   # routers and firewalls load the seal with their own rules
        files[SEAL_FILE] = render_seal_rules(lab.gateways.values())
        if instance.addresses6:
            files[SEAL6_FILE] = render_seal6_rules(lab.gateways6.values())
    node = lab.spec.nodes[instance.node]
    own = kind.own_image(node, str(Path(_absolute(lab.file)).parent)) if kind.own_image else None
    volumes = {}
    if kind.data_volume:
        volumes[docker_name(lab.name, f"{instance.name}-data")] = kind.data_volume
    return ContainerPlan(
        name=instance.name, node=instance.node, kind=instance.kind,
        docker_name=docker_name(lab.name, instance.name), service=kind.folder or "",
        addresses=MappingProxyType({docker_name(lab.name, net): str(address)
                                    for net, address in instance.addresses.items()}),
        stage=kind.stage, files=MappingProxyType(files), probe=kind.probe_for(node),
        capabilities=(*kind.capabilities, *rendered.capabilities),
        addresses6=MappingProxyType({docker_name(lab.name, net): str(address)
                                     for net, address in instance.addresses6.items()}),
        sysctls=MappingProxyType(_sysctls(kind.forwards, bool(instance.addresses6))),
        volumes=MappingProxyType(volumes),
        labels=MappingProxyType({LABEL_LAB: lab.name, LABEL_NODE: instance.name,
                                 LABEL_KIND: instance.kind, LABEL_FILE: _absolute(lab.file),
                                 **_copy_labels(lab)}),
        live_files=MappingProxyType(dict(rendered.live_files)), reload=tuple(rendered.reload),
        depends_on=dependencies(lab, instance),
        image=own.image if own else None, build=own.build if own else None,
        command=kind.command(node),
    )


def _sysctls(forwards: bool, dual_stack: bool) -> dict[str, str]:
    values = {"net.ipv4.ip_forward": "1" if forwards else "0"}
    if dual_stack:
        # The engine starts containers with IPv6 off unless told; a router forwards both families.
        # keep_addr_on_down: the kernel drops an interface's IPv6 addresses when it goes down
        # (`lab link down`) and nothing gives the engine's back on `link up`: the IPv6 BGP
        # session over that link would never return (IPv4's addresses stay either way).
        values.update({"net.ipv6.conf.all.disable_ipv6": "0",
                       "net.ipv6.conf.all.forwarding": "1" if forwards else "0",
                       "net.ipv6.conf.all.keep_addr_on_down": "1"})
    return values


def _copy_labels(lab: Lab) -> dict[str, str]:
    """A classroom copy says which copy it is (and whose): its topology is remade from the
    file and this number, never from the engine's own records."""
    return {LABEL_COPY: str(lab.copy), LABEL_OWNER: lab.owner} if lab.copy else {}


def make_plan(lab: Lab, state: LabState | None = None) -> Plan:
    """Everything that must exist for lab; state carries its keys and secrets (lab/state.py)."""
    state = state or LabState()
    networks = tuple(
        NetworkPlan(name=name, docker_name=docker_name(lab.name, name), subnet=str(network.subnet),
                    gateway=str(lab.gateways[name]),
                    labels=MappingProxyType({LABEL_LAB: lab.name, LABEL_NETWORK: name}),
                    subnet6=str(network.subnet6) if network.subnet6 else None,
                    gateway6=str(lab.gateways6[name]) if name in lab.gateways6 else None)
        for name, network in lab.spec.networks.items())
    containers = tuple(_container_plan(lab, instance, state) for instance in lab.instances)
    return Plan(lab=lab.name, file=lab.file, networks=networks, containers=containers)
