"""Reading tcpdump's lines from the client and each router (recorded in the default lab) into each
hop's own view of one connection, matched by its SYN's sequence number, and the TLS handshake's parts."""

import json
from pathlib import Path

from lab.trace.wire import client_syn, hop_view, parse_packets, tls_on_the_wire

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "trace"
ROUTERS = ("home-router", "isp-router", "fw")


def recorded(name: str) -> tuple[dict, dict]:
    data = json.loads((RECORDED / f"{name}.json").read_text())
    return data, {node: parse_packets(text) for node, text in data["packets"].items()}


def the_syn(packets, port):
    return next(p for p in packets["laptop"] if p.syn and p.direction == "Out" and p.dport == port)


def test_each_router_saw_the_connection_and_the_home_router_translated_it():
    data, packets = recorded("wire-ok")
    syn = client_syn(packets["laptop"], int(data["local_port"]), "198.18.50.10", 443)
    assert syn is not None and syn.seq
    views = [hop_view(node, packets[node], syn.seq) for node in ROUTERS]
    assert all(v.seen and v.syn_out is not None for v in views)
    assert [v.syn_in.time for v in views] == sorted(v.syn_in.time for v in views)   # in path order
    home, isp, fw = views
    assert home.syn_in.src == "100.64.50.10" and home.syn_out.src != "100.64.50.10"  # masquerade on the wire
    assert "source 100.64.50.10:" in home.nat() and isp.nat() == "" and fw.nat() == ""
    assert all(v.answered for v in views) and not fw.refused


def test_the_tls_handshake_splits_into_client_server_and_client_again():
    data, packets = recorded("wire-ok")
    syn = client_syn(packets["laptop"], int(data["local_port"]), "198.18.50.10", 443)
    tls = tls_on_the_wire(packets["laptop"], syn)
    assert tls is not None and tls.hello_at < tls.flight_at <= tls.finished_at
    assert 0 < tls.server_ms < 50                    # the lb's reply to the ClientHello, on the wire
    assert tls.client_work_ms > 0


def test_a_drop_is_seen_where_the_syn_stopped():
    _, packets = recorded("wire-dropped")
    syn = the_syn(packets, 5432)
    home, isp, fw = (hop_view(node, packets[node], syn.seq) for node in ROUTERS)
    assert home.syn_out and isp.syn_out
    assert fw.seen and fw.syn_out is None and not fw.refused


def test_a_reject_is_seen_as_a_reset_sent_back():
    _, packets = recorded("wire-refused")
    syn = the_syn(packets, 22)
    fw = hop_view("fw", packets["fw"], syn.seq)
    assert fw.seen and fw.syn_out is None and fw.refused
