"""firewall: a router that also filters forwarded traffic with the topology's rules."""

from lab.kinds import _forwarding as forwarding
from lab.kinds.registry import PACKET_FILTER, Kind, register

KIND = register(Kind(
    name="firewall", folder=forwarding.FOLDER, stage=forwarding.STAGE,
    probe=forwarding.rules_loaded("routes and rules installed"),
    capabilities=forwarding.CAPABILITIES, forwards=True, render=forwarding.render,
    roles=frozenset({PACKET_FILTER}),
    colour="#e15759", shape="hexagon",
))
