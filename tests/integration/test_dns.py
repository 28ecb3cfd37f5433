"""The DNS hierarchy on a real engine: BIND root/TLD/auth servers and an Unbound resolver."""

from __future__ import annotations

import time

import pytest

from lab.plan.dns import zone_file_name
from lab.plan.zones import all_zones
from lab.trace import resolver as dns_runtime
from lab.trace.dns import trace_lookup

from .conftest import SHIFT, running_lab, shift_subnets, topology_text

CHECKED_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "PTR")


@pytest.fixture(scope="module")
def shop(engine, images):
    with running_lab(engine, topology_text("default", "it-dns")) as lab:
        yield lab


def addr(lab, node):
    return str(lab.lab.instance(node).first_address)


def test_every_record_of_every_zone_resolves_from_the_laptop(shop):
    expected: dict[tuple[str, str], set[str]] = {}
    for zone in all_zones(shop.lab).values():
        for record in zone.records:
            if record.rtype in CHECKED_TYPES:
                expected.setdefault((record.owner, record.rtype), set()).add(record.data)
    assert len(expected) > 20
    asked = "127.0.0.1" if shop.lab.spec.nodes["laptop"].os_cache else addr(shop, "resolver")
    for (owner, rtype), values in expected.items():
        answer = dns_runtime.dig(shop.backend, shop.name, "laptop", owner, rtype)
        assert answer.status == "NOERROR", (owner, rtype, answer)
        assert set(answer.values(rtype)) == values, (owner, rtype, answer)
        assert answer.server == asked   # the laptop's own DNS cache when it has one, else its resolver


def test_unknown_names_get_nxdomain_from_the_server_that_owns_them(shop):
    unknown = dns_runtime.dig(shop.backend, shop.name, "laptop", "no-such-name.shop.test", "A")
    assert unknown.status == "NXDOMAIN"
    assert [(r.name, r.data.split()[0]) for r in unknown.authority if r.type == "SOA"] == \
        [("shop.test.", "ns-shop.shop.test.")]
    tld = dns_runtime.dig(shop.backend, shop.name, "laptop", "www.no-such-tld", "A")
    assert tld.status == "NXDOMAIN"
    assert [(r.name, r.data.split()[0]) for r in tld.authority if r.type == "SOA"] == [(".", "root-1.")]
    # And the servers themselves say so, authoritatively.
    direct = dns_runtime.dig(shop.backend, shop.name, "laptop", "no-such-name.shop.test", "A",
                             server=addr(shop, "ns-shop"), recurse=False)
    assert direct.status == "NXDOMAIN" and "aa" in direct.flags


def test_an_iterative_walk_from_the_lab_root_reaches_www_through_derived_referrals(shop):
    zones = all_zones(shop.lab)
    walk = [("root-1", "test."), ("tld-test", "shop.test.")]
    for server, child in walk:
        reply = dns_runtime.dig(shop.backend, shop.name, "laptop", "www.shop.test", "A",
                                server=addr(shop, server), recurse=False)
        parent = zones["." if server == "root-1" else "test"]
        ns = {r.data for r in parent.records if r.owner == child and r.rtype == "NS"}
        glue = {(r.owner, r.data) for r in parent.records if r.rtype == "A" and r.owner.endswith(child)}
        assert reply.status == "NOERROR" and not reply.answer and "aa" not in reply.flags
        assert {r.data for r in reply.authority if r.type == "NS" and r.name == child} == ns
        assert {(r.name, r.data) for r in reply.additional if r.type == "A"} == glue
    final = dns_runtime.dig(shop.backend, shop.name, "laptop", "www.shop.test", "A",
                            server=addr(shop, "ns-shop"), recurse=False)
    assert "aa" in final.flags and final.values("A") == [str(shop.lab.instance("lb").first_address)]
    # dig +trace, from the laptop, with the lab root as its only hint.
    code, output = shop.exec("laptop", "dig", "+trace", "+tries=1", f"@{addr(shop, 'root-1')}", "www.shop.test")
    assert code == 0, output
    servers = [line.split(" from ")[1].split("#")[0] for line in output.splitlines() if line.startswith(";; Received")]
    # dual-stack: dig may ask a server on either of its addresses (the glue has both)
    owners = {str(a): i.name for i in shop.lab.instances for a in i.all_addresses()}
    assert [owners.get(s) for s in servers[-3:]] == ["root-1", "tld-test", "ns-shop"], output


def test_the_second_lookup_comes_from_the_cache_and_is_faster(shop):
    dns_runtime.flush(shop.backend, shop.name, "resolver")
    assert dns_runtime.flush_stub(shop.backend, shop.name, "laptop")   # the laptop's own DNS cache
    first = trace_lookup(shop.backend, shop.name, "laptop", "www.shop.test", "A")
    assert dns_runtime.flush_stub(shop.backend, shop.name, "laptop")   # so the resolver is asked again
    second = trace_lookup(shop.backend, shop.name, "laptop", "www.shop.test", "A")
    assert not first.from_cache and first.stub["outcome"] == "forwarded"
    assert [s.server for s in first.steps if s.query == "www.shop.test. A"] == ["ns-shop"]
    referrals = [(s.server, s.zone) for s in first.steps if s.outcome == "referral"]
    assert referrals == [("root-1", "test."), ("tld-test", "shop.test.")]
    assert second.from_cache and second.steps == [] and second.stub["outcome"] == "forwarded"
    assert second.answer == first.answer == [f"www.shop.test. A {shop.lab.instance('lb').first_address}"]
    assert second.resolver_ms < first.resolver_ms


def test_a_lookup_again_is_answered_by_the_laptop_own_cache_and_the_resolver_sees_nothing(shop):
    trace_lookup(shop.backend, shop.name, "laptop", "www.shop.test", "A")
    again = trace_lookup(shop.backend, shop.name, "laptop", "www.shop.test", "A")
    assert again.from_os_cache and not again.from_cache and again.steps == []
    assert again.resolver_ms is None   # the resolver's packets hold no query for the name
    assert again.stub["outcome"] == "cache" and again.stub["answer"] == [str(shop.lab.instance("lb").first_address)]
    assert again.answer == [f"www.shop.test. A {shop.lab.instance('lb').first_address}"]


def test_root_hints_hold_only_lab_addresses(shop):
    code, hints = shop.exec("resolver", "cat", "/lab/etc/root.hints")
    assert code == 0
    addresses = [line.split()[-1] for line in hints.splitlines() if "\tA\t" in line]
    assert addresses == [addr(shop, "root-1")]
    code, conf = shop.exec("resolver", "unbound-checkconf", "-o", "root-hints", "/lab/etc/unbound.conf")
    assert conf.strip() == "/lab/etc/root.hints"


# A small lab of its own: two resolvers (each serves only its side), a zone with
# a primary and a secondary, and a record that the test edits.
SMALL = """
name: it-dns-small
networks:
  left:  {subnet: 198.19.4.0/24}
  right: {subnet: 198.19.5.0/24}
nodes:
  rt:   {kind: router, networks: {left: 198.19.4.1, right: 198.19.5.1}}
  root: {kind: dns-root, networks: {left: 198.19.4.11}}
  ns-a: {kind: dns-auth, networks: {left: 198.19.4.12}}
  ns-b: {kind: dns-auth, networks: {left: 198.19.4.13}}
  r1:   {kind: dns-resolver, networks: {left: 198.19.4.53}}
  r2:   {kind: dns-resolver, networks: {right: 198.19.5.53}}
  c1:   {kind: client, networks: {left: 198.19.4.10}, resolver: r1}
  c2:   {kind: client, networks: {right: 198.19.5.10}, resolver: r2}
zones:
  example:
    servers: [ns-a, ns-b]
    records:
      www: {A: WWW}
"""


def small_text(www: str) -> str:
    return shift_subnets(SMALL.replace("it-dns-small", f"it-dns-small-{SHIFT}").replace("WWW", www))


def soa_serial(lab, node, server):
    answer = dns_runtime.dig(lab.backend, lab.name, node, "example", "SOA", server=server, recurse=False)
    assert "aa" in answer.flags, answer
    return int(answer.values("SOA")[0].split()[2])


def test_secondary_refusal_and_a_record_edit_reloaded_in_place(make_lab):
    lab = make_lab(small_text("c1"))
    lab.up()
    a, b = addr(lab, "ns-a"), addr(lab, "ns-b")
    for server in (a, b):  # the secondary got the zone by transfer
        reply = dns_runtime.dig(lab.backend, lab.name, "c1", "www.example", "A", server=server, recurse=False)
        assert reply.values("A") == [addr(lab, "c1")] and "aa" in reply.flags
    # r1 serves the left network only: c2 (right) is refused, c1 is answered.
    refused = dns_runtime.dig(lab.backend, lab.name, "c2", "www.example", "A", server=addr(lab, "r1"))
    assert refused.status == "REFUSED"
    assert dns_runtime.dig(lab.backend, lab.name, "c2", "www.example", "A").values("A") == [addr(lab, "c1")]
    before_ids = {c.name: c.id for c in lab.client.containers.list(filters={"label": f"lab.name={lab.name}"})}
    serials = (soa_serial(lab, "c1", a), soa_serial(lab, "c1", b))

    report = lab.up(small_text("c2"))
    assert report.recreated == [] and report.created == []
    assert report.reloaded == ["ns-a"]  # the zone's primary only: no other node touched
    after_ids = {c.name: c.id for c in lab.client.containers.list(filters={"label": f"lab.name={lab.name}"})}
    assert after_ids == before_ids
    new = addr(lab, "c2")
    deadline = time.monotonic() + 20
    while soa_serial(lab, "c1", b) <= serials[1] and time.monotonic() < deadline:
        time.sleep(0.5)  # NOTIFY, then the secondary's transfer
    assert soa_serial(lab, "c1", a) > serials[0] and soa_serial(lab, "c1", b) > serials[1]
    for server in (a, b):
        reply = dns_runtime.dig(lab.backend, lab.name, "c1", "www.example", "A", server=server, recurse=False)
        assert reply.values("A") == [new]
    dns_runtime.flush(lab.backend, lab.name, "r1")
    assert dns_runtime.dig(lab.backend, lab.name, "c1", "www.example", "A").values("A") == [new]
    code, zone = lab.exec("ns-a", "cat", f"/lab/etc/zones/{zone_file_name('example')}")
    assert new in zone


def test_the_resolver_answers_over_ipv6_with_aaaa_and_ip6_arpa_pointers(shop):
    """Dual-stack: asked on its own IPv6 address, the resolver gives the lb's AAAA, and the lb's
    IPv6 address maps back to its name through the derived ip6.arpa zone."""
    lb6 = shop.lab.instance("lb").first_address6
    resolver6 = str(shop.lab.instance("resolver").first_address6)
    answer = dns_runtime.dig(shop.backend, shop.name, "laptop", "www.shop.test", "AAAA", server=resolver6)
    assert answer.status == "NOERROR" and answer.server == resolver6, answer
    assert answer.values("AAAA") == [str(lb6)]
    pointer = dns_runtime.dig(shop.backend, shop.name, "laptop", lb6.reverse_pointer, "PTR", server=resolver6)
    assert pointer.status == "NOERROR" and pointer.values("PTR") == ["lb.lab."], pointer


def test_named_starts_after_lab_init_and_the_probe_needs_every_zone_authoritative(shop):
    """BIND's zones are written beside lab-init, named starts after it; the readiness probe (one
    dig for all zones) passes on the root's zones and fails once one zone it lists is not held."""
    for node in ("root-1", "tld-test", "ns-shop"):
        logs = shop.client.containers.get(f"{shop.name}-{node}").logs().decode()
        assert logs.index("lab-init: done") < logs.index("lab-named: starting named"), (node, logs)
    code, conf = shop.exec("root-1", "cat", "/lab/etc/named.conf")
    assert code == 0 and conf.count('zone "') > 5, conf   # the root also holds the reverse zones
    code, output = shop.exec("root-1", "/usr/local/bin/lab-dns-ready")
    assert code == 0, output
    # The same probe reading a copy of named.conf that lists one zone more, not held by this server.
    probe_on_copy = ("cp /lab/etc/named.conf /tmp/probe.conf && "
                     "echo 'zone \"not-held.example\" { type primary; file \"/dev/null\"; };' >> /tmp/probe.conf && "
                     "sed 's#^conf=.*#conf=/tmp/probe.conf#' /usr/local/bin/lab-dns-ready > /tmp/probe && sh /tmp/probe")
    code, output = shop.exec("root-1", "sh", "-c", probe_on_copy)
    assert code == 1, output
    code, output = shop.exec("root-1", "sh", "-c", probe_on_copy.replace(" >> /tmp/probe.conf", " > /dev/null"))
    assert code == 0, output
