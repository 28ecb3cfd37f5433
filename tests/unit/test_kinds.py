"""Kinds are plug-ins: the registry knows everything about a kind, and nobody else names one."""

import ast
import importlib.util
import sys
from collections import Counter
from ipaddress import IPv4Address
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from lab.export.compose import compose_document
from lab.graph.html import to_html
from lab.graph.model import build_graph
from lab.graph.text import to_dot, to_mermaid
from lab.kinds import registry
from lab.plan import LabState, make_plan
from lab.topology import Instance, Lab, load_topology
from lab.topology.model import FORWARDING_KINDS, KINDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lab"
# Where kinds may be named: their own modules, and the topology model that defines the file format.
MAY_NAME_KINDS = ("lab/kinds/", "lab/topology/model.py")
# Words that equal a kind's name but mean something else where they stand; each with its count,
# so a new occurrence (or a stale entry) fails the test.
NOT_KINDS = {
    ("lab/trace/model.py", "firewall"): (1, "trace step vocabulary (lab.trace/2): FIREWALL_STEP"),
    ("lab/trace/model.py", "app"): (2, "trace step vocabulary: SERVER_STEP, and the Server-Timing metric"),
    ("lab/firewall/explain.py", "firewall"): (1, "a JSON field of `lab firewall explain --json`"),
    ("lab/trace/html.py", "client"): (2, "a CSS class and a label of the trace page"),
    ("lab/browse/journey_model.py", "firewall"): (1, "journey step vocabulary (STEPS): FIREWALL"),
    ("lab/browse/journey_model.py", "database"): (1, "journey step vocabulary (STEPS): DATABASE"),
    ("lab/plan/model.py", "service"): (1, "a key of the config hash: the services/ folder"),
}


def kind_constants(source: str, kinds: set[str]) -> list[tuple[int, str]]:
    """(line, value) of every string constant equal to a kind's name, docstrings left out."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value in kinds and id(node) not in docstrings)


def all_kind_names() -> set[str]:
    return set(registry.names()) | set(KINDS)


def test_the_walker_finds_a_kind_name_and_skips_docstrings():
    source = '"""A router."""\ndef f(kind):\n    """Is it a firewall?"""\n    return kind == "router" or f"x{kind}"\n'
    assert kind_constants(source, {"router", "firewall"}) == [(4, "router")]


def test_no_module_outside_the_kinds_and_the_model_names_a_kind():
    kinds = all_kind_names()
    found: Counter = Counter()
    where: dict = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(MAY_NAME_KINDS):
            continue
        for line, value in kind_constants(path.read_text(), kinds):
            found[(relative, value)] += 1
            where.setdefault((relative, value), []).append(line)
    allowed = {key: count for key, (count, _why) in NOT_KINDS.items()}
    unexpected = {f"{file}:{where[(file, value)]}: '{value}'" for (file, value), count in found.items()
                  if count != allowed.get((file, value))}
    stale = {f"{file}: '{value}'" for (file, value) in allowed if (file, value) not in found}
    assert not unexpected, ("these modules name a kind; ask lab.kinds.registry (by role) instead: "
                            + ", ".join(sorted(unexpected)))
    assert not stale, f"NOT_KINDS lists words no longer there: {', '.join(sorted(stale))}"


def test_every_kind_of_the_model_is_registered_once_with_its_image_folder():
    assert set(registry.names()) == set(KINDS)
    for kind in registry.all_kinds():
        # a kind has its services/ folder, or each node brings its own image
        assert (kind.folder is None) == (kind.own_image is not None), kind.name
        assert kind.folder is None or (ROOT / "services" / kind.folder / "Dockerfile").is_file(), kind.name
        assert kind.forwards == (kind.name in FORWARDING_KINDS), kind.name
        assert kind.colour.startswith("#") and kind.probe.command, kind.name


def test_every_role_the_lab_relies_on_has_a_kind():
    for role in (registry.TRAFFIC_SOURCE, registry.RECURSIVE_RESOLVER, registry.ROOT_SERVER,
                 registry.AUTHORITATIVE_DNS, registry.PACKET_FILTER, registry.HTTP_BALANCER,
                 registry.HTTP_UPSTREAM, registry.SQL_DATABASE, registry.TOOLS_IMAGE):
        assert registry.with_role(role), role


# -- a kind added by one module, in a test ----------------------------------

GADGET_MODULE = '''
"""gadget: a made-up kind, to prove one module is all a kind needs."""
from typing import Literal

from lab.kinds.registry import Kind, register
from lab.plan.model import Probe, Rendered
from lab.topology.model import NodeBase


class Gadget(NodeBase):
    kind: Literal["gadget"]
    greeting: str = "hello"


def render(lab, instance, state):
    spec = lab.spec.nodes[instance.node]
    return Rendered(files={"etc/gadget.conf": f"greeting={spec.greeting}\\n"})


def needs(lab, instance):
    return lab.instances_of("web")


KIND = register(Kind(
    name="gadget", folder="gadget", stage=2,
    probe=Probe(("test", "-e", "/run/gadget-{mood}"), 15, "the gadget is {mood}"),
    probe_fields=lambda spec: {"mood": "happy"}, env=lambda spec: {"GADGET_GREETING": spec.greeting},
    capabilities=("NET_RAW",), data_volume="/var/lib/gadget", render=render, needs=needs,
    colour="#123456", shape="cylinder",
))
'''


@pytest.fixture
def gadget(tmp_path):
    """The gadget module, written to a file and imported like any module; unregistered after."""
    path = tmp_path / "gadget_kind.py"
    path.write_text(GADGET_MODULE)
    spec = importlib.util.spec_from_file_location("gadget_kind", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gadget_kind"] = module
    spec.loader.exec_module(module)
    yield module
    registry.unregister("gadget")
    sys.modules.pop("gadget_kind", None)


def lab_with_gadget(module) -> Lab:
    """The minimal lab plus one gadget node on its server network (the model entry is the
    test's own Gadget class, as a new kind's would be in lab/topology/model.py)."""
    lab = load_topology(ROOT / "topology" / "minimal.yaml")
    node = module.Gadget(kind="gadget", networks={"server": "198.19.100.77"}, greeting="hi")
    spec = lab.spec.model_copy(update={"nodes": {**lab.spec.nodes, "gizmo": node}})
    gizmo = Instance("gizmo", "gizmo", "gadget", MappingProxyType({"server": IPv4Address("198.19.100.77")}))
    return Lab(spec, lab.file, (*lab.instances, gizmo), lab.gateways)


def test_a_kind_registered_by_one_module_plans(gadget):
    plan = make_plan(lab_with_gadget(gadget), LabState())
    gizmo = next(c for c in plan.containers if c.name == "gizmo")
    assert gizmo.service == "gadget" and gizmo.kind == "gadget" and gizmo.stage == 2
    assert gizmo.files["etc/gadget.conf"] == "greeting=hi\n"
    assert "GADGET_GREETING=hi\n" in gizmo.files["env"] and "LAB_ROUTES_BY=runtime\n" in gizmo.files["env"]
    assert gizmo.probe.command == ("test", "-e", "/run/gadget-happy")
    assert gizmo.capabilities == ("NET_RAW",)
    assert list(gizmo.volumes.values()) == ["/var/lib/gadget"]
    assert gizmo.depends_on == ("web",)
    assert gizmo.sysctls["net.ipv4.ip_forward"] == "0"


def test_a_kind_registered_by_one_module_graphs(gadget):
    graph = build_graph(lab_with_gadget(gadget))
    assert any(node.name == "gizmo" and node.kind == "gadget" for node in graph.nodes)
    mermaid, dot, page = to_mermaid(graph), to_dot(graph), to_html(graph)
    assert 'gizmo[("gizmo<br/><i>gadget</i>")]:::gadget' in mermaid
    assert "classDef gadget fill:#123456" in mermaid
    assert '"gizmo" [shape=cylinder, style="rounded,filled", fillcolor="#123456"' in dot
    assert "#123456" in page and "gizmo" in page


def test_a_kind_registered_by_one_module_exports_to_compose(gadget):
    plan = make_plan(lab_with_gadget(gadget), LabState())
    document = compose_document(plan, "compose.d/mini", "topology/minimal.yaml")
    service = document["services"]["gizmo"]
    assert service["image"] == "lab/gadget:latest"
    assert service["networks"]["server"]["ipv4_address"] == "198.19.100.77"
    # compose starts by stage: the gadget's stage 2 waits for the stage before it (the router's)
    assert service["depends_on"] == {"router": {"condition": "service_healthy"}}
    assert service["healthcheck"]["test"][1:] == ["test", "-e", "/run/gadget-happy"]
    assert "gizmo-routes" in document["services"]   # no NET_ADMIN: routes come from a companion
    yaml.safe_load(yaml.safe_dump(document))


def test_an_unregistered_kind_is_named_in_the_error():
    with pytest.raises(KeyError, match="no kind named 'gadget'"):
        registry.get("gadget")
