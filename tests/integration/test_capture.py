"""`lab capture` on a running lab: real packets, a pcap others can read, no helper left."""

from __future__ import annotations

import io
import secrets
import signal
import struct
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from lab.plan.model import LABEL_LAB
from lab.backends.docker.capture import CaptureRequest, capture

from .conftest import lab_cli, running_lab, topology_text

QUERY_NAME = b"\x03www\x04shop\x04test\x00"   # www.shop.test as it travels in a DNS packet


def pcap_packets(data: bytes) -> list[bytes]:
    """The packets of a classic pcap file (the format tcpdump -w writes), by hand."""
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4 and linktype in (1, 276)   # microsecond pcap; Ethernet, or Linux cooked v2 (any)
    packets, offset = [], 24
    while offset < len(data):
        _sec, _usec, captured, _length = struct.unpack("<IIII", data[offset:offset + 16])
        packets.append(data[offset + 16:offset + 16 + captured])
        offset += 16 + captured
    return packets


def capture_helpers(engine, lab: str) -> list:
    return engine.containers.list(all=True, filters={"label": [f"{LABEL_LAB}={lab}", "lab.role=capture"]})


def wait_until_capturing(engine, lab: str, process) -> None:
    """Until the capture's helper runs, as the engine sees it: by then `lab capture` has its signal
    handlers (they are set before the helper is made), however slow the machine is. A fixed sleep
    was not enough at a load average of 50."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any(c.status == "running" for c in capture_helpers(engine, lab)):
            time.sleep(0.5)   # tcpdump opening the interface, after the helper's start
            return
        time.sleep(0.2)
    raise AssertionError(f"the capture never started: {process.communicate(timeout=5)[0] if process.poll() is not None else 'still waiting'}")


@pytest.fixture(scope="module")
def shop(engine, images):
    with running_lab(engine, topology_text("default", "it-cap")) as lab:
        yield lab


def _dig_soon(shop, name: str, delay: float = 1.5) -> threading.Thread:
    # asked of the resolver itself: the laptop's own DNS cache must not answer it in the node
    resolver = f"@{shop.lab.instance('resolver').first_address}"
    worker = threading.Thread(target=lambda: (time.sleep(delay), shop.exec("laptop", "dig", "+short", resolver, name)))
    worker.start()
    return worker


def test_a_dns_query_is_captured_as_pcap_that_tcpdump_reads(shop, engine):
    sink = io.BytesIO()
    worker = _dig_soon(shop, "www.shop.test")
    result = capture(engine, CaptureRequest(shop.name, "resolver", "isp", "udp port 53", duration=5), sink)
    worker.join()
    data = sink.getvalue()
    assert result.interface.startswith("eth") and result.bytes_written == len(data)
    packets = pcap_packets(data)
    lb = shop.lab.instance("lb").first_address.packed
    assert any(QUERY_NAME in packet for packet in packets)                      # the question
    assert any(QUERY_NAME in packet and lb in packet for packet in packets)     # the answer, lb's address
    # An independent reader: tcpdump in another node reads the same file.
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("dns.pcap")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    engine.containers.get(f"{shop.name}-laptop").put_archive("/tmp", archive.getvalue())
    code, text = shop.exec("laptop", "tcpdump", "-nn", "-r", "/tmp/dns.pcap")
    assert code == 0, text
    assert "A? www.shop.test." in text and f"A {shop.lab.instance('lb').first_address}" in text
    assert capture_helpers(engine, shop.name) == []


def test_a_capture_on_one_network_sees_only_that_interface(shop, engine):
    sink = io.BytesIO()
    worker = _dig_soon(shop, "www.shop.test")
    capture(engine, CaptureRequest(shop.name, "resolver", "isp", "udp port 53", duration=4), sink)
    worker.join()
    resolver = shop.lab.instance("resolver").address_on("isp").packed
    for packet in pcap_packets(sink.getvalue()):
        assert resolver in packet[26:34]   # the IPv4 source or destination is the resolver's isp address


def test_ctrl_c_ends_the_capture_cleanly_and_leaves_no_helper(shop, engine, tmp_path):
    out = tmp_path / "dns.pcap"
    process = lab_cli("capture", "--lab", shop.name, "resolver", "--filter", "udp port 53", "-w", str(out))
    wait_until_capturing(engine, shop.name, process)
    for _ in range(3):   # a query the capture must see; more than one, should tcpdump open late
        # a new name each time: the laptop's own DNS cache would answer a repeated one itself
        shop.exec("laptop", "dig", "+short", "+tries=1", f"{secrets.token_hex(4)}.www.shop.test")
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "bytes of pcap" in output and "Traceback" not in output
    assert any(QUERY_NAME in packet for packet in pcap_packets(out.read_bytes()))
    assert capture_helpers(engine, shop.name) == []


@pytest.mark.parametrize("args, words", [
    (["laptop", "nosuchnet", "-c", "1"], "is not on network 'nosuchnet'"),
    (["laptop", "--filter", "port port", "-c", "1"], "cannot read the filter"),
    (["nosuchnode", "-c", "1"], "has no node 'nosuchnode'"),
])
def test_bad_requests_are_told_plainly(shop, engine, args, words):
    result = subprocess.run([sys.executable, "-m", "lab", "capture", "--lab", shop.name, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (1, 2) and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert capture_helpers(engine, shop.name) == []


def test_sigterm_ends_the_capture_as_ctrl_c_does(shop, engine, tmp_path):
    out = tmp_path / "term.pcap"
    process = lab_cli("capture", "--lab", shop.name, "laptop", "home", "-w", str(out))
    wait_until_capturing(engine, shop.name, process)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0 and "bytes of pcap" in output, output
    assert out.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"
    assert capture_helpers(engine, shop.name) == []
