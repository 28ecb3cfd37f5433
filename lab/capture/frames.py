"""tcpdump's pcap stream, read and decoded just enough to pick one request's packets.

Reads the classic pcap format (what `tcpdump -w -` writes), in either byte order
and at micro- or nanosecond resolution, and decodes the headers a trace matches
on: the Linux cooked v2 header of `tcpdump -i any -y LINUX_SLL2` (which interface,
in or out), Ethernet, IPv4, TCP (ports, flags, sequence number, payload length),
UDP, and the first question of a DNS message. Anything else is kept, undecoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL2 = 1, 101, 276
MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
ETHERTYPE_IPV4 = 0x0800
SLL2_OUTGOING = 4
TCP, UDP = 6, 17
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass(frozen=True)
class Frame:
    timestamp_us: int
    data: bytes                  # as captured (link layer included)
    original_length: int
    ifindex: int = 0             # the interface it was seen on (Linux cooked v2), 0: unknown
    outgoing: bool = False
    src: str = ""
    dst: str = ""
    protocol: int = 0            # 6 TCP, 17 UDP, ...
    sport: int = 0
    dport: int = 0
    flags: int = 0               # TCP flags
    seq: int = 0
    payload: int = 0             # bytes of TCP/UDP payload
    payload_at: int = 0          # where that payload starts in data
    dns_name: str | None = None  # a DNS message's first question, lower case, no final dot

    @property
    def syn(self) -> bool:
        return self.protocol == TCP and self.flags & (SYN | ACK) == SYN

    @property
    def syn_ack(self) -> bool:
        return self.protocol == TCP and self.flags & (SYN | ACK) == SYN | ACK

    def ends(self) -> frozenset:
        """The two ends of its connection, in either direction."""
        return frozenset({(self.src, self.sport), (self.dst, self.dport)})

    def tcp_flags(self) -> str:
        """tcpdump's letters: S, S., ., P., F., R ..."""
        letters = "".join(letter for bit, letter in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"))
                          if self.flags & bit)
        return letters + ("." if self.flags & ACK else "")


def read_pcap(data: bytes) -> tuple[int, list[Frame]]:
    """(link type, frames) of a pcap stream; a record cut short at the end is left out."""
    if len(data) < 24:
        return 0, []
    magic = struct.unpack_from("<I", data)[0]
    order = "<" if magic in (MAGIC_US, MAGIC_NS) else ">"
    magic = struct.unpack_from(f"{order}I", data)[0]
    if magic not in (MAGIC_US, MAGIC_NS):
        raise ValueError("not a pcap stream (unknown magic number)")
    nano = magic == MAGIC_NS
    linktype = struct.unpack_from(f"{order}I", data, 20)[0] & 0x0FFFFFFF
    frames, at = [], 24
    while at + 16 <= len(data):
        seconds, fraction, captured, original = struct.unpack_from(f"{order}IIII", data, at)
        if at + 16 + captured > len(data):
            break
        raw = bytes(data[at + 16:at + 16 + captured])
        stamp = seconds * 1_000_000 + (fraction // 1000 if nano else fraction)
        frames.append(decode(linktype, stamp, raw, original))
        at += 16 + captured
    return linktype, frames


def decode(linktype: int, timestamp_us: int, raw: bytes, original: int) -> Frame:
    ifindex, outgoing, network = 0, False, None
    if linktype == LINKTYPE_LINUX_SLL2 and len(raw) >= 20:
        protocol, _, ifindex, _, kind = struct.unpack_from(">HHIHB", raw)
        outgoing = kind == SLL2_OUTGOING
        network = raw[20:] if protocol == ETHERTYPE_IPV4 else None
    elif linktype == LINKTYPE_ETHERNET and len(raw) >= 14:
        network = raw[14:] if struct.unpack_from(">H", raw, 12)[0] == ETHERTYPE_IPV4 else None
    elif linktype == LINKTYPE_RAW:
        network = raw
    fields = _ipv4(network) if network else {}
    if "payload_at" in fields:
        fields["payload_at"] += len(raw) - len(network)
    return Frame(timestamp_us, raw, original, ifindex, outgoing, **fields)


def _ipv4(packet: bytes) -> dict:
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return {}
    header = (packet[0] & 0x0F) * 4
    total = struct.unpack_from(">H", packet, 2)[0]
    protocol = packet[9]
    fields = {"src": ".".join(map(str, packet[12:16])), "dst": ".".join(map(str, packet[16:20])),
              "protocol": protocol}
    segment = packet[header:total] if total >= header else packet[header:]
    if protocol == TCP and len(segment) >= 20:
        sport, dport, seq, _, offset, flags = struct.unpack_from(">HHIIBB", segment)
        fields.update(sport=sport, dport=dport, seq=seq, flags=flags, payload=max(total - header - (offset >> 4) * 4, 0),
                      payload_at=header + (offset >> 4) * 4)
        data = segment[(offset >> 4) * 4:]
        if 53 in (sport, dport) and len(data) > 2:
            fields["dns_name"] = dns_question(data[2:])   # DNS over TCP: a length first
    elif protocol == UDP and len(segment) >= 8:
        sport, dport = struct.unpack_from(">HH", segment)
        fields.update(sport=sport, dport=dport, payload=max(total - header - 8, 0))
        if 53 in (sport, dport):
            fields["dns_name"] = dns_question(segment[8:])
    return fields


def tls_records(frame: Frame) -> list[int]:
    """The content types of the TLS records that start in a TCP segment's payload, in order
    (22 handshake, 20 change cipher spec, 23 application data), as far as the capture holds them."""
    data = frame.data[frame.payload_at:frame.payload_at + frame.payload] if frame.payload_at else b""
    types, at = [], 0
    while at + 5 <= len(data) and data[at] in (20, 21, 22, 23) and data[at + 1] == 3:
        types.append(data[at])
        at += 5 + struct.unpack_from(">H", data, at + 3)[0]
    return types


def dns_question(message: bytes) -> str | None:
    """The name of a DNS message's first question ("" for the root), None when it has none."""
    if len(message) < 12 or struct.unpack_from(">H", message, 4)[0] == 0:
        return None
    labels, at = [], 12
    while at < len(message):
        length = message[at]
        if length == 0:
            return ".".join(labels).lower()
        if length & 0xC0:          # a question's name is never compressed
            return None
        labels.append(message[at + 1:at + 1 + length].decode("ascii", "replace"))
        at += 1 + length
    return None
