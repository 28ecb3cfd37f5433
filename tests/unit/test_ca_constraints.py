"""The lab CA vouches only for the lab: checked by a real verifier (openssl verify, and the
cryptography package's X.509 path validation), not by reading our own extension back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from lab import pki
from lab.state import ca_scope, ensure_lab_state, state_dir
from lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shop(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    lab = load_topology(ROOT / "topology" / "default.yaml")
    ensure_lab_state(lab)
    directory = state_dir(lab.name)
    ca = pki.KeyAndCert((directory / "ca.key").read_text(), (directory / "ca.crt").read_text())
    return lab, ca


def _openssl_verify(tmp_path: Path, ca: pki.KeyAndCert, cert: pki.KeyAndCert) -> subprocess.CompletedProcess:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command on this machine")
    (tmp_path / "ca.pem").write_text(ca.cert_pem)
    (tmp_path / "cert.pem").write_text(cert.cert_pem)
    return subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(tmp_path / "ca.pem"),
                           str(tmp_path / "cert.pem")], capture_output=True, text=True)


def test_the_lbs_own_certificate_verifies(shop, tmp_path):
    lab, ca = shop
    directory = state_dir(lab.name)
    issued = pki.KeyAndCert((directory / "tls" / "lb.key").read_text(), (directory / "tls" / "lb.crt").read_text())
    result = _openssl_verify(tmp_path, ca, issued)
    assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("names, addresses", [(["www.example.com"], []), (["shop.test.evil.com"], []),
                                              (["www.shop.test", "bank.example"], []),
                                              (["www.shop.test"], ["192.0.2.1"])])
def test_a_name_outside_the_labs_zones_or_subnets_does_not_verify(shop, tmp_path, names, addresses):
    _lab, ca = shop
    forged = pki.issue_server_cert(ca, names, addresses)     # signed with the real CA key
    result = _openssl_verify(tmp_path, ca, forged)
    assert result.returncode != 0
    assert "subtree violation" in (result.stdout + result.stderr), result.stdout + result.stderr


def test_a_name_inside_verifies_with_a_second_verifier_and_outside_does_not(shop):
    _lab, ca = shop
    store = Store([x509.load_pem_x509_certificate(ca.cert_pem.encode())])
    inside = x509.load_pem_x509_certificate(pki.issue_server_cert(ca, ["api.shop.test"], ["198.18.10.10"]).cert_pem.encode())
    PolicyBuilder().store(store).build_server_verifier(x509.DNSName("api.shop.test")).verify(inside, [])
    outside = x509.load_pem_x509_certificate(pki.issue_server_cert(ca, ["www.example.com"]).cert_pem.encode())
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName("www.example.com")).verify(outside, [])


def test_an_unconstrained_ca_from_before_is_replaced_and_the_lb_reissued(shop):
    lab, _ca = shop
    directory = state_dir(lab.name)
    old = pki.make_ca(lab.name)     # what older versions made: no name constraints
    (directory / "ca.key").write_text(old.key_pem)
    (directory / "ca.crt").write_text(old.cert_pem)
    ensure_lab_state(lab)
    now = (directory / "ca.crt").read_text()
    assert now != old.cert_pem and pki.ca_permits_only(now, *ca_scope(lab))
    assert pki.signed_by((directory / "tls" / "lb.crt").read_text(), now)
    before = now
    ensure_lab_state(lab)           # and then kept
    assert (directory / "ca.crt").read_text() == before
