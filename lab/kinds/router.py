"""router: forwards between its networks, NATs (masquerade, port forwards), filters nothing."""

from lab.kinds import _forwarding as forwarding
from lab.kinds.registry import TOOLS_IMAGE, Kind, register

KIND = register(Kind(
    name="router", folder=forwarding.FOLDER, stage=forwarding.STAGE,
    probe=forwarding.rules_loaded("routes and NAT rules installed"),
    capabilities=forwarding.CAPABILITIES, forwards=True, render=forwarding.render,
    # its image is the smallest with tcpdump and tc: capture and impair helpers run it
    roles=frozenset({TOOLS_IMAGE}),
    colour="#59a14f", shape="hexagon",
))
