"""The lab's own certificate authority: a CA and server certificates, in pure Python.

Each lab gets one CA (made at its first `lab up`, kept in its state directory)
and one server certificate per load balancer, for every name that points at
it. The CA is name-constrained (RFC 5280, critical): it can vouch only for names
under the lab's zones and addresses in the lab's subnets, so a host that trusts
it (as `lab ca` invites) trusts nothing else because of it. Keys are ECDSA P-256: small and fast to make, accepted by every TLS 1.2+
client. Nothing here touches the engine or the disk.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825   # the longest validity browsers accept for a server certificate


@dataclass(frozen=True)
class KeyAndCert:
    key_pem: str
    cert_pem: str

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return serialization.load_pem_private_key(self.key_pem.encode(), password=None)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    # Back-dated a little so a container whose clock lags the host still accepts it.
    now = dt.datetime.now(dt.timezone.utc)
    return now - dt.timedelta(hours=1), now + dt.timedelta(days=days)


def _permitted(zones: list[str], subnets: list[str]) -> list[x509.GeneralName]:
    labels = [z.strip(".").lower() for z in zones]
    # A lab that serves the root zone owns every name: then only addresses are constrained.
    names: list[x509.GeneralName] = [] if "" in labels else [x509.DNSName(z) for z in labels]
    return names + [x509.IPAddress(ipaddress.ip_network(s)) for s in subnets]


def make_ca(lab_name: str, zones: list[str] = (), subnets: list[str] = ()) -> KeyAndCert:
    """A self-signed CA that may sign server certificates only (path length 0), and only
    for names under zones and addresses in subnets (when given)."""
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lab"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"lab {lab_name} CA")])
    not_before, not_after = _validity(CA_DAYS)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    permitted = _permitted(list(zones), list(subnets))
    if permitted:
        cert = cert.add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None),
                                  critical=True)
    return KeyAndCert(_key_pem(key), _cert_pem(cert.sign(key, hashes.SHA256())))


def ca_permits_only(ca_cert_pem: str, zones: list[str], subnets: list[str]) -> bool:
    """True when the CA is constrained to exactly these zones and subnets."""
    cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    try:
        constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return not _permitted(list(zones), list(subnets))
    return set(constraints.permitted_subtrees or ()) == set(_permitted(list(zones), list(subnets)))


def ca_constraints(ca_cert_pem: str) -> tuple[list[str], list[str]]:
    """(DNS zones, subnets) a CA may vouch for; both empty when it is unconstrained."""
    cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    try:
        permitted = cert.extensions.get_extension_for_class(x509.NameConstraints).value.permitted_subtrees
    except x509.ExtensionNotFound:
        return [], []
    permitted = permitted or []
    return ([n.value for n in permitted if isinstance(n, x509.DNSName)],
            [str(n.value) for n in permitted if isinstance(n, x509.IPAddress)])


def _alt_names(names: list[str], addresses: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = [x509.DNSName(name.rstrip(".")) for name in names]
    entries += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    return entries


def issue_server_cert(ca: KeyAndCert, names: list[str], addresses: list[str] = ()) -> KeyAndCert:
    """A server certificate signed by ca for DNS names (absolute or not) and IP addresses."""
    if not names and not addresses:
        raise ValueError("a server certificate needs at least one name or address")
    key = _new_key()
    common = (names[0].rstrip(".") if names else addresses[0])
    ca_cert = ca.cert
    not_before, not_after = _validity(SERVER_DAYS)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(_alt_names(list(names), list(addresses))), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))
    return KeyAndCert(_key_pem(key), _cert_pem(cert))


def cert_covers(cert_pem: str, names: list[str], addresses: list[str] = ()) -> bool:
    """True when the certificate's alternative names are exactly these names and addresses."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    have_ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return have == {n.rstrip(".").lower() for n in names} and have_ips == set(addresses)


def signed_by(cert_pem: str, ca_cert_pem: str) -> bool:
    """True when cert_pem was issued by this CA (signature checked)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
