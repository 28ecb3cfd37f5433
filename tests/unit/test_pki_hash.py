"""The planner's OpenSSL subject hash against openssl's own, for subjects of every shape."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from lab.pki import make_ca
from lab.pki_hash import subject_hash

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None,
                                   reason="the openssl command is not installed: nothing to compare with")


def _self_signed(subject: x509.Name) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _openssl_hash(pem: str) -> str:
    return subprocess.run(["openssl", "x509", "-noout", "-hash"], input=pem.encode(), capture_output=True,
                          check=True).stdout.decode().strip()


SUBJECTS = {
    "the lab CA's shape": x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lab"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, "lab default CA")]),
    "upper case and runs of white space": x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "  Lab \t SHOP   Ca  ")]),
    "printable and IA5 strings": x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE", _ASN1Type.PrintableString),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "Ops@Lab.Test", _ASN1Type.IA5String)]),
    "several values in one RDN": x509.Name([x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.COMMON_NAME, "b"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "a")])]),
    "non-ASCII letters (kept as they are)": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ünïcode Çá")]),
    "a value longer than 127 bytes": x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "O" * 60),
                                                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * 64),
                                                x509.NameAttribute(NameOID.COMMON_NAME, "c" * 64)]),
}


@needs_openssl
@pytest.mark.parametrize("shape", sorted(SUBJECTS))
def test_subject_hash_is_openssls(shape):
    pem = _self_signed(SUBJECTS[shape])
    assert subject_hash(pem) == _openssl_hash(pem)


@needs_openssl
def test_the_lab_ca_hash_is_openssls():
    pem = make_ca("shop-lab", ["shop.test"], ["198.18.0.0/15"]).cert_pem
    assert subject_hash(pem) == _openssl_hash(pem)


def test_a_subject_value_of_another_type_is_refused_not_guessed():
    pem = _self_signed(x509.Name([x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01",
                                                     _ASN1Type.BitString)]))
    with pytest.raises(ValueError, match="ASN.1 type 3"):
        subject_hash(pem)
