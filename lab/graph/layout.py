"""Where everything goes on the page: networks as horizontal buses, one above the other in the
order of the journey, each node in a box in the band under a bus, wired to its buses by
vertical lines.

The rule that makes the picture read right, by construction: every node owns a column over
the bands its wires cross, so no wire can pass through another node's box (a wire may cross
another network's bus, as in a circuit diagram; a dot marks where it really connects).
Columns are handed out like intervals to registers (sorted by first band, the lowest free
column), which uses as few columns as the busiest band needs. A node on several networks sits
between the highest and lowest of them, in a band of its own AS when it can; the networks of
one AS are kept together so the AS is one shaded strip. Pure and deterministic: a graph in,
rectangles and segments out; tests check the geometry itself (tests/unit/test_graph_layout.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations

from lab.graph.model import Graph, GraphNetwork, GraphNode

CHAR = 7.2             # width of a character of 12 px sans-serif, a little generous
LINE = 14              # one text line in a box
MARGIN = 24
COLUMN_GAP = 26
NAME_ROOM = 17         # above a bus: the network's name
UNDER_BUS = 16         # between a bus and the boxes under it
BAND_GAP = 12          # under the boxes of a band
REGION_HEAD = 22       # above an AS's first network: its label
NOTE_WIDTH = 30        # a node's note wraps at this many characters
MAX_PERMUTED = 6       # strips after the first tried in every order up to this many (720 orders, ~60 ms)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Box:
    node: GraphNode
    rect: Rect
    lines: tuple[str, ...]          # "name kind", "network address" per network, note lines


@dataclass(frozen=True)
class Bus:
    network: GraphNetwork
    line: Segment                   # horizontal
    label: Rect                     # the name above and the subnet (and impairment) under it
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Wire:
    node: str
    network: str
    address: str
    line: Segment                   # vertical, from the box's edge to the bus


@dataclass(frozen=True)
class Region:
    system: str
    title: str                      # "AS64601 isp-a"
    description: str
    rect: Rect
    label: Rect


@dataclass
class Picture:
    width: float
    height: float
    boxes: list[Box] = field(default_factory=list)
    buses: list[Bus] = field(default_factory=list)
    wires: list[Wire] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)


def text_width(text: str) -> float:
    return len(text) * CHAR


def box_lines(node: GraphNode, note: str | None = None) -> tuple[str, ...]:
    """The box's text: "name kind" (drawn bold, then italic), a line per address, the note."""
    lines = [f"{node.name} {node.kind}", *(f"{net} {address}" for net, address in node.addresses.items())]
    return tuple(lines + _wrap(node.note if note is None else note, NOTE_WIDTH))


def _note_in_strip(graph: Graph, node: GraphNode, strip: str) -> str:
    """A router's note without its AS when it is drawn inside that AS's own strip (the strip says it)."""
    system = graph.systems.get(node.system)
    if system is None or strip != node.system:
        return node.note
    return node.note.removesuffix(f"AS{system.number} {node.system}").strip().removesuffix(";")


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def bus_lines(network: GraphNetwork) -> tuple[str, ...]:
    return (network.name, network.subnet, *([network.impair] if network.impair else []))


# ---- which network goes in which row ----------------------------------------------------

def _strips(networks: list[GraphNetwork]) -> list[list[GraphNetwork]]:
    """Networks of one AS together (where the first of them came in the journey); a network of
    no AS alone."""
    strips: list[list[GraphNetwork]] = []
    by_system: dict[str, list[GraphNetwork]] = {}
    for network in networks:
        if network.system and network.system in by_system:
            by_system[network.system].append(network)
            continue
        strips.append([network])
        if network.system:
            by_system[network.system] = strips[-1]
    return strips


def _rows(graph: Graph) -> list[GraphNetwork]:
    """The journey's order, with each AS's networks in one strip; the strips after the first
    (the clients') in the order that keeps most routers inside their own AS, then wires short."""
    if not any(network.system for network in graph.networks):
        return list(graph.networks)
    strips = _strips(graph.networks)
    if len(strips) - 1 > MAX_PERMUTED:
        return [network for strip in strips for network in strip]
    best, best_cost = None, None
    for rest in permutations(strips[1:]):   # the journey's order first: it wins ties
        rows = [network for strip in (strips[0], *rest) for network in strip]
        cost = _cost(graph, rows)
        if best_cost is None or cost < best_cost:
            best, best_cost = rows, cost
    return best


def _cost(graph: Graph, rows: list[GraphNetwork]) -> tuple[int, int]:
    index = {network.name: i for i, network in enumerate(rows)}
    outside, length = 0, 0
    for node in graph.nodes:
        spans = [index[net] for net in node.addresses]
        band = _band(node, spans, rows)
        if node.system and rows[band].system != node.system:
            outside += 1
        length += max(spans) - min(spans)
    return outside, length


def _band(node: GraphNode, spans: list[int], rows: list[GraphNetwork]) -> int:
    """The band (under which row's bus) a node's box goes in: its network's, or for a node on
    several, one between its highest and lowest network, its own AS's if it can, else the middle."""
    top, bottom = min(spans), max(spans)
    if top == bottom:
        return top
    middle = (top + bottom - 1) / 2
    return min(range(top, bottom),
               key=lambda band: (node.system != "" and rows[band].system != node.system, abs(band - middle), band))


# ---- columns -----------------------------------------------------------------------------

def _columns(order: list[tuple[int, int]]) -> list[int]:
    """A column for each (first band, last band) its wires and box cover: the lowest column
    free from its first band on (interval colouring: as many columns as the busiest band)."""
    ends: list[int] = []          # per column, the last band taken
    chosen = [0] * len(order)
    for i in sorted(range(len(order)), key=lambda i: (order[i][0], order[i][1], i)):
        first, last = order[i]
        column = next((c for c, end in enumerate(ends) if end < first), len(ends))
        if column == len(ends):
            ends.append(last)
        ends[column] = last
        chosen[i] = column
    return chosen


# ---- the picture -------------------------------------------------------------------------

def lay_out(graph: Graph) -> Picture:
    rows = _rows(graph)
    index = {network.name: i for i, network in enumerate(rows)}
    nodes = list(graph.nodes)
    spans = [[index[net] for net in node.addresses] for node in nodes]
    bands = [_band(node, span, rows) for node, span in zip(nodes, spans)]
    covers = [(min(span), max(max(span) - 1, band)) for span, band in zip(spans, bands)]
    columns = _columns(covers)
    lines = [box_lines(node, _note_in_strip(graph, node, rows[band].system)) for node, band in zip(nodes, bands)]
    sizes = [(max(120.0, max(map(text_width, text)) + 16), 8.0 + LINE * len(text)) for text in lines]
    label_width = _label_width(graph, rows)
    lefts = _column_lefts(columns, sizes, MARGIN + label_width + COLUMN_GAP)
    bus_y, band_top, regions_y, height = _rows_y(graph, rows, bands, sizes)
    boxes = [Box(node, Rect(lefts[c], band_top[b], w, h), text)
             for node, c, b, (w, h), text in zip(nodes, columns, bands, sizes, lines)]
    wires = [wire for box in boxes for wire in _wires(box, index, bus_y)]
    width = max([MARGIN + label_width] + [box.rect.right for box in boxes]) + MARGIN
    buses = [_bus(network, bus_y[i], label_width, wires) for i, network in enumerate(rows)]
    regions = [_region(graph, system, top, bottom, width, label_width) for system, top, bottom in regions_y]
    return Picture(width, height, boxes, buses, wires, regions)


def _label_width(graph: Graph, rows: list[GraphNetwork]) -> float:
    texts = [line for network in rows for line in bus_lines(network)]
    texts += [_region_title(graph, network.system) for network in rows if network.system]
    return max(map(text_width, texts), default=0.0)


def _region_title(graph: Graph, system: str) -> str:
    return f"AS{graph.systems[system].number} {system}" if system in graph.systems else system


def _column_lefts(columns: list[int], sizes: list[tuple[float, float]], start: float) -> list[float]:
    widths = [0.0] * (max(columns, default=-1) + 1)
    for column, (w, _) in zip(columns, sizes):
        widths[column] = max(widths[column], w)
    lefts, x = [], start
    for w in widths:
        lefts.append(x)
        x += w + COLUMN_GAP
    return lefts


def _rows_y(graph: Graph, rows: list[GraphNetwork], bands: list[int], sizes):
    """Each bus's y, each band's top, each AS strip's (system, top, bottom), the page's height."""
    tallest = [0.0] * len(rows)
    for band, (_, h) in zip(bands, sizes):
        tallest[band] = max(tallest[band], h)
    bus_y, band_top, strips = [], [], []
    y = MARGIN
    for i, network in enumerate(rows):
        starts = network.system and (i == 0 or rows[i - 1].system != network.system)
        if starts:
            strips.append([network.system, y, y])
            y += REGION_HEAD
        bus_y.append(y + NAME_ROOM)
        band_top.append(bus_y[-1] + UNDER_BUS)
        label_bottom = bus_y[-1] + LINE * (len(bus_lines(network)) - 1) + 6
        y = max(band_top[-1] + tallest[i], label_bottom) + BAND_GAP
        if network.system:
            strips[-1][2] = y - BAND_GAP / 2
    return bus_y, band_top, [tuple(strip) for strip in strips], y + MARGIN


def _wires(box: Box, index: dict[str, int], bus_y: list[float]) -> list[Wire]:
    """One vertical wire per network, spread across the box so no two share a line."""
    rect, count = box.rect, len(box.node.addresses)
    wires = []
    for k, (network, address) in enumerate(box.node.addresses.items()):
        x = rect.x + (k + 1) * rect.w / (count + 1)
        y = bus_y[index[network]]
        start = rect.y if y < rect.y else rect.bottom
        wires.append(Wire(box.node.name, network, address, Segment(x, start, x, y)))
    return wires


def _bus(network: GraphNetwork, y: float, label_width: float, wires: list[Wire]) -> Bus:
    xs = [wire.line.x1 for wire in wires if wire.network == network.name]
    right = max(xs, default=MARGIN + label_width) + COLUMN_GAP / 2
    text = bus_lines(network)
    # the name's baseline 5 above the bus, the subnet's (and impairment's) 13, 27 under it
    label = Rect(MARGIN, y - 15, max(map(text_width, text)), 18 + LINE * (len(text) - 1))
    return Bus(network, Segment(MARGIN, y, right, y), label, text)


def _region(graph: Graph, system: str, top: float, bottom: float, width: float, label_width: float) -> Region:
    title = _region_title(graph, system)
    description = graph.systems[system].description if system in graph.systems else ""
    rect = Rect(MARGIN / 2, top, width - MARGIN, bottom - top)
    return Region(system, title, description, rect, Rect(MARGIN, top + 4, text_width(title), LINE + 2))


__all__ = ["Box", "Bus", "Picture", "Rect", "Region", "Segment", "Wire", "box_lines", "lay_out", "text_width"]
