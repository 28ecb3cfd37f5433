"""The picture's geometry, checked as geometry: for every shipped topology and generated ones up
to 100 nodes, no wire passes through a box or label that is not its own, no two boxes overlap,
everything is inside the canvas, routers sit between the networks they join, and each AS's
strip holds its networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.graph import build_graph
from lab.graph.layout import Picture, Rect, Segment, lay_out, text_width
from lab.topology import load_text, load_topology
from tests.generated import generated_as_chain, generated_topology

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*ROOT.glob("topology/*.yaml"), *ROOT.glob("topology/examples/*.yaml")])
GENERATED = [5, 25, 60, 100]
AS_CHAINS = ["as-3", "as-9"]      # 9 ASes: more strips than are tried in every order


def crosses(segment: Segment, rect: Rect, inset: float = 0.5) -> bool:
    """Whether the segment enters the rectangle's inside (touching its edge does not count):
    Liang-Barsky clipping against the rectangle shrunk by inset."""
    left, right, top, bottom = rect.x + inset, rect.right - inset, rect.y + inset, rect.bottom - inset
    dx, dy = segment.x2 - segment.x1, segment.y2 - segment.y1
    low, high = 0.0, 1.0
    for p, q in ((-dx, segment.x1 - left), (dx, right - segment.x1), (-dy, segment.y1 - top), (dy, bottom - segment.y1)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def overlap(a: Rect, b: Rect) -> bool:
    return a.x < b.right and b.x < a.right and a.y < b.bottom and b.y < a.bottom


def inside(rect: Rect, picture: Picture) -> bool:
    return rect.x >= 0 and rect.y >= 0 and rect.right <= picture.width and rect.bottom <= picture.height


def picture_of(source) -> tuple[object, Picture]:
    if isinstance(source, Path):
        lab = load_topology(source)
    elif isinstance(source, str):
        lab = load_text(generated_as_chain(int(source.removeprefix("as-"))), "aschain.yaml")
    else:
        lab = load_text(generated_topology(source), "gen.yaml")
    return lab, lay_out(build_graph(lab))


CASES = [*SHIPPED, *GENERATED, *AS_CHAINS]
IDS = [p.stem if isinstance(p, Path) else f"generated-{p}" for p in CASES]


def test_the_checker_itself_sees_a_crossing_and_a_touch():
    box = Rect(10, 10, 20, 20)
    assert crosses(Segment(0, 20, 40, 20), box) and crosses(Segment(15, 0, 15, 15), box)
    assert not crosses(Segment(15, 0, 15, 10), box)       # ends on the box's edge: a wire arriving
    assert not crosses(Segment(0, 0, 40, 5), box) and not crosses(Segment(35, 0, 35, 40), box)


@pytest.mark.parametrize("source", CASES, ids=IDS)
def test_no_wire_passes_through_a_box_or_label_not_its_own(source):
    _, picture = picture_of(source)
    assert picture.wires
    for wire in picture.wires:
        for box in picture.boxes:
            if box.node.name != wire.node:
                assert not crosses(wire.line, box.rect), f"{wire.node}'s wire to {wire.network} crosses {box.node.name}"
        for bus in picture.buses:
            assert not crosses(wire.line, bus.label), f"{wire.node}'s wire crosses {bus.network.name}'s label"
        for region in picture.regions:
            assert not crosses(wire.line, region.label), f"{wire.node}'s wire crosses {region.title}"


@pytest.mark.parametrize("source", CASES, ids=IDS)
def test_each_wire_joins_its_own_box_and_its_own_bus(source):
    lab, picture = picture_of(source)
    boxes = {box.node.name: box.rect for box in picture.boxes}
    buses = {bus.network.name: bus.line for bus in picture.buses}
    for wire in picture.wires:
        box, bus, line = boxes[wire.node], buses[wire.network], wire.line
        assert line.x1 == line.x2 and box.x < line.x1 < box.right                 # vertical, out of its box
        assert line.y1 in (box.y, box.bottom) and line.y2 == bus.y1               # from its edge to its bus
        assert bus.x1 <= line.x2 <= bus.x2
        assert wire.address == str(lab.instance(wire.node).addresses[wire.network])
    assert sorted((w.node, w.network) for w in picture.wires) == sorted(
        (i.name, n) for i in lab.instances for n in i.addresses)


@pytest.mark.parametrize("source", CASES, ids=IDS)
def test_boxes_never_overlap_and_everything_is_inside_the_canvas(source):
    _, picture = picture_of(source)
    rects = [box.rect for box in picture.boxes]
    labels = [bus.label for bus in picture.buses] + [region.label for region in picture.regions]
    for i, rect in enumerate(rects):
        assert inside(rect, picture)
        assert not any(overlap(rect, other) for other in rects[i + 1:] + labels)
    for box in picture.boxes:   # every line of text fits its box (same width estimate as the drawing)
        assert max(map(text_width, box.lines)) <= box.rect.w
    for label in labels:
        assert inside(label, picture)
    for bus in picture.buses:
        assert 0 <= bus.line.x1 < bus.line.x2 <= picture.width and not any(
            box.rect.y < bus.line.y1 < box.rect.bottom and box.rect.x < bus.line.x2 and bus.line.x1 < box.rect.right
            for box in picture.boxes)                                            # a bus never runs through a box


@pytest.mark.parametrize("source", CASES, ids=IDS)
def test_routers_sit_between_the_networks_they_join(source):
    _, picture = picture_of(source)
    bus_y = {bus.network.name: bus.line.y1 for bus in picture.buses}
    for box in picture.boxes:
        ys = [bus_y[network] for network in box.node.addresses]
        if len(ys) > 1:
            assert min(ys) < box.rect.y and box.rect.bottom < max(ys), box.node.name


@pytest.mark.parametrize("source", AS_CHAINS)
def test_each_generated_as_is_one_strip_holding_its_routers(source):
    lab, picture = picture_of(source)
    regions = {region.system: region.rect for region in picture.regions}
    assert set(regions) == set(lab.spec.autonomous_systems)
    for box in picture.boxes:
        if box.node.system:
            rect = regions[box.node.system]
            assert rect.y <= box.rect.y and box.rect.bottom <= rect.bottom, box.node.name
    tops = sorted(regions.values(), key=lambda r: r.y)
    assert all(a.bottom <= b.y for a, b in zip(tops, tops[1:]))      # strips never overlap


def test_every_as_is_a_strip_holding_its_networks_and_its_routers():
    lab, picture = picture_of(ROOT / "topology" / "internet.yaml")
    regions = {region.system: region.rect for region in picture.regions}
    assert set(regions) == set(lab.spec.autonomous_systems)      # the exchange's too, around the IXP
    for bus in picture.buses:
        owner = bus.network.system
        assert owner == (lab.spec.networks[bus.network.name].as_ or ("ixp" if bus.network.name == "ixp" else ""))
        for system, rect in regions.items():
            assert (rect.y < bus.line.y1 < rect.bottom) == (system == owner), (bus.network.name, system)
    for box in picture.boxes:
        if box.node.system:
            rect = regions[box.node.system]
            assert rect.y <= box.rect.y and box.rect.bottom <= rect.bottom, box.node.name
    titles = {region.system: region.title for region in picture.regions}
    assert titles["isp-a"] == "AS64601 isp-a" and titles["ixp"] == "AS64650 ixp"


def test_the_layout_is_deterministic_and_keeps_the_journeys_order():
    first = lay_out(build_graph(load_topology(ROOT / "topology" / "default.yaml")))
    again = lay_out(build_graph(load_topology(ROOT / "topology" / "default.yaml")))
    assert first == again
    assert [bus.network.name for bus in first.buses] == ["home", "isp", "backbone", "dmz", "apps", "data"]
    assert [bus.line.y1 for bus in first.buses] == sorted(bus.line.y1 for bus in first.buses)
