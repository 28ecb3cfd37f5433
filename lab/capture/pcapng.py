"""Writing pcapng (the format Wireshark and tcpdump read) with the standard library only.

One Section Header Block, then one Interface Description Block per capture point
(its if_name option says where: "node:network"), then one Enhanced Packet Block
per packet, naming its point by interface id and carrying its own timestamp.
Everything is little-endian (the byte-order magic says so to readers) and every
block and option is padded to 32 bits, as the format asks (draft-ietf-opsawg-pcapng).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterable

SECTION_HEADER = 0x0A0D0D0A
INTERFACE_DESCRIPTION = 0x00000001
ENHANCED_PACKET = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT, IF_NAME, IF_DESCRIPTION, IF_TSRESOL, SHB_USERAPPL = 0, 1, 2, 3, 9, 4
MICROSECONDS = 6             # if_tsresol: timestamps count microseconds (the default, said anyway)
SNAPLEN = 262144


@dataclass(frozen=True)
class Interface:
    name: str                # if_name: "laptop:home"
    linktype: int            # LINKTYPE_* of its packets (276: Linux cooked v2, 1: Ethernet)
    description: str = ""


@dataclass(frozen=True)
class Packet:
    interface: int           # index into the file's interfaces
    timestamp_us: int        # microseconds since the epoch
    data: bytes
    original_length: int = 0  # on the wire (0: as captured)
    comment: str = ""


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _options(options: list[bytes]) -> bytes:
    return b"".join(options) + struct.pack("<HH", OPT_END, 0) if options else b""


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)    # type, length, body (already padded), length again
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def section_header(application: str = "lab trace") -> bytes:
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)   # version 1.0, section length unknown
    return _block(SECTION_HEADER, body + _options([_option(SHB_USERAPPL, application.encode())]))


def interface_description(interface: Interface) -> bytes:
    options = [_option(IF_NAME, interface.name.encode()), _option(IF_TSRESOL, bytes([MICROSECONDS]))]
    if interface.description:
        options.append(_option(IF_DESCRIPTION, interface.description.encode()))
    return _block(INTERFACE_DESCRIPTION, struct.pack("<HHI", interface.linktype, 0, SNAPLEN) + _options(options))


def enhanced_packet(packet: Packet) -> bytes:
    high, low = packet.timestamp_us >> 32, packet.timestamp_us & 0xFFFFFFFF
    captured = len(packet.data)
    head = struct.pack("<IIIII", packet.interface, high, low, captured, packet.original_length or captured)
    options = _options([_option(OPT_COMMENT, packet.comment.encode())] if packet.comment else [])
    return _block(ENHANCED_PACKET, head + _pad(packet.data) + options)


def write(sink: BinaryIO, interfaces: list[Interface], packets: Iterable[Packet]) -> int:
    """The whole file into sink, packets in the order given; the number of packets written."""
    sink.write(section_header())
    for interface in interfaces:
        sink.write(interface_description(interface))
    count = 0
    for packet in packets:
        if not 0 <= packet.interface < len(interfaces):
            raise ValueError(f"packet names interface {packet.interface}, the file has {len(interfaces)}")
        sink.write(enhanced_packet(packet))
        count += 1
    return count


def read(data: bytes) -> tuple[list[Interface], list[Packet]]:
    """A little-endian file this module wrote, read back (for checks; not a general reader)."""
    interfaces: list[Interface] = []
    packets: list[Packet] = []
    at = 0
    while at + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, at)
        body = data[at + 8:at + length - 4]
        if kind == INTERFACE_DESCRIPTION:
            linktype = struct.unpack_from("<H", body)[0]
            names = _read_options(body[8:])
            interfaces.append(Interface(names.get(IF_NAME, b"").decode(), linktype,
                                        names.get(IF_DESCRIPTION, b"").decode()))
        elif kind == ENHANCED_PACKET:
            interface, high, low, captured, original = struct.unpack_from("<IIIII", body)
            payload = body[20:20 + captured]
            comment = _read_options(body[20 + captured + (-captured % 4):]).get(OPT_COMMENT, b"").decode()
            packets.append(Packet(interface, (high << 32) | low, payload, original, comment))
        at += length
    return interfaces, packets


def _read_options(data: bytes) -> dict[int, bytes]:
    found, at = {}, 0
    while at + 4 <= len(data):
        code, length = struct.unpack_from("<HH", data, at)
        if code == OPT_END:
            break
        found[code] = data[at + 4:at + 4 + length]
        at += 4 + length + (-length % 4)
    return found
