"""Files built to hurt a YAML loader end in a TopologyError with a position, quickly and in
little memory; huge subnets are allocated by arithmetic, never by listing addresses."""

import time
import tracemalloc
from pathlib import Path

import pytest

from lab.topology import TopologyError, load_text, load_topology
from lab.topology.yaml_compose import MAX_DEPTH, MAX_VALUES
from lab.topology.yaml_source import MAX_BYTES

VALID = (Path(__file__).resolve().parents[1] / "fixtures" / "valid-small.yaml").read_text()
SECONDS = 2.0      # CPU seconds of this process: other work on a shared machine does not count
MEGABYTES = 200


def refused(text: str, trace_memory: bool = True) -> list:
    """Load text; return its problems, checking the time (plain run) and memory (traced run,
    ten times slower: left out where the file is long)."""
    started = time.process_time()
    with pytest.raises(TopologyError) as caught:
        load_text(text, "hostile.yaml")
    elapsed = time.process_time() - started
    assert elapsed < SECONDS, f"{elapsed:.1f} s"
    if not trace_memory:
        return caught.value.problems
    tracemalloc.start()
    try:
        with pytest.raises(TopologyError):
            load_text(text, "hostile.yaml")
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert peak < MEGABYTES, f"{peak:.0f} MB"
    return caught.value.problems


def test_deep_nesting_is_refused_where_it_starts():
    text = "name: fx\nnodes: " + "[" * 20000 + "]" * 20000 + "\n"
    [problem] = refused(text)
    # The top mapping is the first level, so bracket number MAX_DEPTH is one too many.
    assert (problem.line, problem.column) == (2, len("nodes: ") + MAX_DEPTH)
    assert "nesting deeper than" in problem.message


def test_an_alias_inside_itself_is_refused_at_the_alias():
    [problem] = refused("name: fx\nnodes: &loop {a: {b: *loop}}\n")
    assert (problem.line, problem.column) == (2, len("nodes: &loop {a: {b: ") + 1)
    assert "*loop is inside the value it names" in problem.message


def test_an_alias_bomb_is_refused_before_it_expands():
    lines = ["name: fx", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]   # 10**9 values
    [problem] = refused("\n".join(lines) + "\n")
    assert f"more than {MAX_VALUES:,} values" in problem.message
    assert problem.line == 2 + 4   # l4 is the first to pass 100,000


def test_a_huge_file_is_refused_without_parsing():
    text = "name: fx\n" + "# padding\n" * (MAX_BYTES // 10 + 1)
    [problem] = refused(text, trace_memory=False)
    assert (problem.line, problem.column) == (1, 1) and "at most" in problem.message


def test_a_long_flat_list_is_refused_at_the_value_past_the_limit():
    text = "name: fx\nnodes: [" + ", ".join(["1"] * (MAX_VALUES + 10)) + "]\n"
    [problem] = refused(text, trace_memory=False)
    assert problem.line == 2 and "more than" in problem.message


def test_an_explicit_tag_with_unreadable_text_is_a_topology_error():
    [problem] = refused("name: fx\ndescription: !!timestamp not-a-date\n")
    assert (problem.line, problem.column) == (2, 14) and "tag" in problem.message


def test_aliases_and_merge_keys_still_work_for_real_use():
    text = VALID.replace("  pc:\n    kind: client\n    networks: [lan]",
                         "  pc: &client\n    kind: client\n    networks: [lan]\n"
                         "  pc2:\n    <<: *client\n    description: a second laptop")
    lab = load_text(text)
    assert lab.spec.nodes["pc2"].kind == "client"
    assert list(lab.spec.nodes["pc2"].networks) == ["lan"]


def test_duplicate_keys_are_still_reported_after_a_merge_key_does_not_count():
    text = VALID.replace("    kind: app\n", "    kind: app\n    kind: app\n", 1)
    problems = refused(text)
    assert any("duplicate key 'kind'" in p.message for p in problems)


def _slash8_lab(clients: int) -> str:
    lines = ["name: big", "networks:", "  lan: {subnet: 10.0.0.0/8}", "nodes:"]
    lines += [f"  c{i}: {{kind: client, networks: [lan]}}" for i in range(clients)]
    return "\n".join(lines) + "\n"


def test_a_slash_8_of_clients_is_allocated_by_arithmetic():
    tracemalloc.start()
    started = time.process_time()
    try:
        lab = load_text(_slash8_lab(300))
        elapsed = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert elapsed < SECONDS and peak < 50, f"{elapsed:.1f} s, {peak:.0f} MB"
    addresses = sorted(str(i.addresses["lan"]) for i in lab.instances)
    assert addresses[0] == "10.0.0.10" and len(set(addresses)) == 300
    assert str(lab.gateways["lan"]) == "10.255.255.254"


@pytest.mark.parametrize("subnet", ["0.0.0.0/0", "128.0.0.0/1", "100.0.0.0/7"])
def test_a_subnet_larger_than_a_slash_8_is_refused(subnet):
    problems = refused(VALID.replace("100.64.1.0/24", subnet))
    assert any(f"{subnet} is too large" in p.message and p.line == 4 for p in problems)


def test_replicas_past_the_last_ipv4_address_are_reported_not_crashed():
    text = VALID.replace("    replicas: 2\n    networks: [dmz]",
                         "    replicas: 3\n    networks: {dmz: 255.255.255.254}")
    problems = refused(text)
    assert any("past 255.255.255.255" in p.message for p in problems)


def test_a_5000_node_topology_validates_in_under_3_seconds(tmp_path):
    nets = 26
    lines = ["name: huge", "networks:"]
    lines += [f"  n{j}: {{subnet: 100.64.{j}.0/24}}" for j in range(nets)]
    lines += ["nodes:"] + [f"  r{j}: {{kind: router, networks: [n{j}, n{j + 1}]}}" for j in range(nets - 1)]
    lines += [f"  c{i}:\n    kind: client\n    networks: [n{i // 200}]" for i in range(5000)]
    path = tmp_path / "huge.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.process_time()
    lab = load_topology(path)
    assert time.process_time() - started < 3.0
    assert len(lab.instances) == 5025
