"""The pcapng writer and the pcap reader, checked against tcpdump (an independent reader)."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from lab.capture import frames, pcapng

TCPDUMP = shutil.which("tcpdump")


def ipv4(src: str, dst: str, protocol: int, segment: bytes) -> bytes:
    total = 20 + len(segment)
    return (struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, protocol, 0,
                        bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))) + segment)


def tcp(sport: int, dport: int, seq: int, flags: int, payload: bytes = b"") -> bytes:
    return struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 64240, 0, 0) + payload


def dns_query(name: str) -> bytes:
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def sll2(ifindex: int, outgoing: bool, packet: bytes) -> bytes:
    return struct.pack(">HHIHBB8s", 0x0800, 0, ifindex, 1, 4 if outgoing else 0, 6, b"\x02\x42\0\0\0\1\0\0") + packet


SYN = sll2(7, True, ipv4("100.64.10.10", "198.18.10.10", 6, tcp(40000, 443, 123456789, frames.SYN)))
NATTED = sll2(9, True, ipv4("100.64.0.2", "198.18.10.10", 6, tcp(40000, 443, 123456789, frames.SYN)))
QUERY = sll2(7, True, ipv4("100.64.10.10", "100.64.0.53", 17, udp(5353, 53, dns_query("www.shop.test"))))


def write(path, packets) -> None:
    interfaces = [pcapng.Interface("laptop:home", frames.LINKTYPE_LINUX_SLL2),
                  pcapng.Interface("isp-router:backbone", frames.LINKTYPE_LINUX_SLL2, "eth1")]
    with path.open("wb") as sink:
        assert pcapng.write(sink, interfaces, packets) == len(packets)


@pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed here (scripts/setup.sh installs it)")
def test_tcpdump_reads_what_the_writer_wrote_packet_for_packet(tmp_path):
    file = tmp_path / "t.pcapng"
    write(file, [pcapng.Packet(0, 1_700_000_000_000_001, QUERY),
                 pcapng.Packet(0, 1_700_000_000_250_000, SYN, comment="the client's SYN"),
                 pcapng.Packet(1, 1_700_000_000_251_500, NATTED)])
    result = subprocess.run([TCPDUMP, "-nn", "-tt", "-r", str(file)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert lines[0].startswith("1700000000.000001") and "100.64.10.10.5353 > 100.64.0.53.53" in lines[0]
    assert "A? www.shop.test." in lines[0]
    assert lines[1].startswith("1700000000.250000") and "100.64.10.10.40000 > 198.18.10.10.443: Flags [S]" in lines[1]
    assert "seq 123456789" in lines[1]
    assert lines[2].startswith("1700000000.251500") and "100.64.0.2.40000 > 198.18.10.10.443" in lines[2]
    assert "Out" in lines[1]          # the cooked header's direction survives


def test_the_file_reads_back_with_interfaces_and_comments(tmp_path):
    file = tmp_path / "t.pcapng"
    write(file, [pcapng.Packet(1, 5, NATTED, comment="isp-router's SYN")])
    interfaces, packets = pcapng.read(file.read_bytes())
    assert [i.name for i in interfaces] == ["laptop:home", "isp-router:backbone"]
    assert interfaces[1].description == "eth1"
    assert packets == [pcapng.Packet(1, 5, NATTED, len(NATTED), "isp-router's SYN")]


def test_every_block_is_32_bit_aligned_and_lengths_agree(tmp_path):
    file = tmp_path / "t.pcapng"
    write(file, [pcapng.Packet(0, 1, QUERY[:-1])])        # an odd length, padded
    data = file.read_bytes()
    at = 0
    while at < len(data):
        kind, length = struct.unpack_from("<II", data, at)
        assert length % 4 == 0 and struct.unpack_from("<I", data, at + length - 4)[0] == length, kind
        at += length
    assert at == len(data)


def test_a_packet_naming_an_interface_the_file_lacks_is_refused(tmp_path):
    with pytest.raises(ValueError, match="interface 5"):
        write(tmp_path / "t.pcapng", [pcapng.Packet(5, 1, SYN)])


def pcap_stream(linktype: int, records: list[tuple[int, bytes]], nano: bool = False, order: str = "<") -> bytes:
    head = struct.pack(f"{order}IHHiIII", frames.MAGIC_NS if nano else frames.MAGIC_US, 2, 4, 0, 0, 262144, linktype)
    body = b""
    for stamp_us, data in records:
        fraction = (stamp_us % 1_000_000) * (1000 if nano else 1)
        body += struct.pack(f"{order}IIII", stamp_us // 1_000_000, fraction, len(data), len(data)) + data
    return head + body


@pytest.mark.parametrize("nano, order", [(False, "<"), (True, "<"), (False, ">")])
def test_the_pcap_reader_decodes_what_a_trace_matches_on(nano, order):
    linktype, read = frames.read_pcap(pcap_stream(frames.LINKTYPE_LINUX_SLL2,
                                                  [(1_000_000_123, SYN), (1_000_000_456, QUERY)], nano, order))
    assert linktype == frames.LINKTYPE_LINUX_SLL2
    syn, query = read
    assert (syn.timestamp_us, syn.ifindex, syn.outgoing, syn.src, syn.sport, syn.dst, syn.dport, syn.seq) == \
        (1_000_000_123, 7, True, "100.64.10.10", 40000, "198.18.10.10", 443, 123456789)
    assert syn.syn and not syn.syn_ack and syn.tcp_flags() == "S" and syn.payload == 0
    assert query.protocol == frames.UDP and query.dns_name == "www.shop.test"


def test_a_record_cut_short_at_the_end_is_left_out():
    stream = pcap_stream(frames.LINKTYPE_LINUX_SLL2, [(1, SYN), (2, QUERY)])
    assert len(frames.read_pcap(stream[:-3])[1]) == 1


def test_something_that_is_no_pcap_is_said_so():
    with pytest.raises(ValueError, match="not a pcap"):
        frames.read_pcap(b"\0" * 40)


def ipv6(src: str, dst: str, next_header: int, payload: bytes, hop_by_hop: bool = False) -> bytes:
    from ipaddress import IPv6Address
    if hop_by_hop:   # an extension header (router alert, padded to 8 bytes) before the transport
        payload = struct.pack(">BB6s", next_header, 0, b"\x05\x02\x00\x00\x01\x00") + payload
        next_header = 0
    return (struct.pack(">IHBB", 6 << 28, len(payload), next_header, 64)
            + IPv6Address(src).packed + IPv6Address(dst).packed + payload)


def sll2_v6(ifindex: int, outgoing: bool, packet: bytes) -> bytes:
    return struct.pack(">HHIHBB8s", 0x86DD, 0, ifindex, 1, 4 if outgoing else 0, 6, b"\x02\x42\0\0\0\1\0\0") + packet


@pytest.mark.parametrize("hop_by_hop", [False, True])
def test_ipv6_packets_are_decoded_like_ipv4_ones(hop_by_hop):
    """The dual-stack lab's client connects over IPv6 when curl chooses it: its SYN must be read."""
    syn = sll2_v6(7, True, ipv6("fd6c:6162:64:10::a", "fd6c:6162:198:10::a", 6,
                                tcp(40000, 443, 123456789, frames.SYN, b""), hop_by_hop))
    frame = frames.decode(frames.LINKTYPE_LINUX_SLL2, 1, syn, len(syn))
    assert (frame.src, frame.dst, frame.sport, frame.dport, frame.seq) == \
        ("fd6c:6162:64:10::a", "fd6c:6162:198:10::a", 40000, 443, 123456789)
    assert frame.syn and frame.outgoing and frame.ifindex == 7
    query = sll2_v6(7, True, ipv6("fd6c:6162:64:10::a", "fd6c:6162:64::35", 17,
                                  udp(5353, 53, dns_query("www.shop.test")), hop_by_hop))
    assert frames.decode(frames.LINKTYPE_LINUX_SLL2, 1, query, len(query)).dns_name == "www.shop.test"
