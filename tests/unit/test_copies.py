"""Copies of a lab for a classroom: own names, own addresses, the same lab otherwise."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network
from itertools import combinations

import pytest

from lab.plan import LabState, make_plan
from lab.topology import load_text, load_topology
from lab.topology.copies import CopyError, copy_texts, most_copies
from tests.generated import generated_topology


def shipped(root, name):
    path = root / "topology" / f"{name}.yaml"
    return path.read_text(), load_topology(path)


@pytest.mark.parametrize("name", ["default", "minimal"])
def test_copies_get_their_own_names_and_subnets_and_stay_valid(root, name):
    text, lab = shipped(root, name)
    copies = {copy: load_text(copy_text, f"{name} ({copy})") for copy, copy_text in copy_texts(text, lab, 5).items()}
    assert list(copies) == [f"{lab.name}-{i}" for i in range(1, 6)]
    everyone = [lab, *copies.values()]
    assert [c.name for c in copies.values()] == list(copies)
    subnets = [ip_network(n.subnet) for one in everyone for n in one.spec.networks.values()]
    for a, b in combinations(subnets, 2):
        assert not a.overlaps(b), f"{a} and {b} overlap"
    engine_names = [n.docker_name for one in everyone for n in make_plan(one, LabState()).networks]
    assert len(set(engine_names)) == len(engine_names)


def test_every_address_moves_by_the_same_stride_per_range(root):
    text, lab = shipped(root, "default")
    copy = load_text(copy_texts(text, lab, 2)["shop-2"], "copy")
    for original, moved in zip(lab.instances, copy.instances, strict=True):
        assert original.name == moved.name and original.kind == moved.kind
        for network, address in original.addresses.items():
            shift = int(moved.addresses[network]) - int(address)
            # 198.18.0.0/24..198.18.30.0/24 span 31 /24s: a stride of 32 /24s; 100.64.0-10: 16 /24s.
            expected = 2 * (8192 if IPv4Address(address) in ip_network("198.18.0.0/15") else 4096)
            assert shift == expected, (original.name, network)
    # what the author wrote elsewhere moves too: the zone's records point at the copy's own nodes
    assert text.count("198.18.10.10") and "198.18.10.10" not in copy_texts(text, lab, 2)["shop-2"]


def test_too_many_copies_are_refused_with_the_limit(root):
    text, lab = shipped(root, "default")
    assert most_copies(lab) == 15
    copy_texts(text, lab, 15)
    with pytest.raises(CopyError, match=r"16 copies of lab 'shop' do not fit in 198\.18\.0\.0/15: at most 15"):
        copy_texts(text, lab, 16)
    with pytest.raises(CopyError, match="1 or more"):
        copy_texts(text, lab, 0)


def test_a_subnet_outside_the_copy_ranges_and_a_long_name_are_refused():
    outside = "name: odd\nnetworks:\n  n: {subnet: 203.0.113.0/24}\nnodes:\n  c: {kind: client, networks: [n]}\n"
    with pytest.raises(CopyError, match=r"network 'n' \(203\.0\.113\.0/24\) is outside the ranges"):
        copy_texts(outside, load_text(outside), 2)
    long_name = "a" * 31
    text = outside.replace("odd", long_name).replace("203.0.113", "10.1.1")
    with pytest.raises(CopyError, match="shorten the lab's name"):
        copy_texts(text, load_text(text), 2)


def test_a_generated_lab_of_200_nodes_can_be_copied():
    text = generated_topology(200)
    lab = load_text(text)
    copies = copy_texts(text, lab, 3)
    assert len(load_text(copies["bench200-3"]).instances) == len(lab.instances)


def test_groups_whose_copies_would_meet_are_refused():
    text = ("name: near\nnetworks:\n  a: {subnet: 10.1.0.0/24}\n  b: {subnet: 10.2.0.0/17}\n"
            "nodes:\n  c: {kind: client, networks: [a]}\n  d: {kind: client, networks: [b]}\n")
    lab = load_text(text)
    assert len(copy_texts(text, lab, 255)) == 255        # a's copies reach 10.1.255.0/24
    with pytest.raises(CopyError, match=r"network 'a' of copy 256 \(10\.2\.0\.0/24\) would overlap network 'b'"):
        copy_texts(text, lab, 256)


def test_copies_loaded_together_are_the_copies_loaded_one_by_one(root):
    from lab.topology import load_copies, load_copy

    path = root / "topology" / "minimal.yaml"
    together = load_copies(path, [(1, "ada"), (3, "cy")])
    alone = [load_copy(path, 1, owner="ada"), load_copy(path, 3, owner="cy")]
    assert [(c.name, c.copy, c.owner, c.instances) for c in together] == \
        [(c.name, c.copy, c.owner, c.instances) for c in alone]
    assert [c.name for c in together] == ["mini-1", "mini-3"]
