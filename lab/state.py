"""Per-lab state kept on the host: material that must outlive containers (keys, passwords).

Lives in $LAB_STATE_DIR/<lab>/ (default ~/.local/state/lab/<lab>/). Made at the
first `lab up` and reused, so plans stay deterministic across runs. Nothing
here talks to the engine.

Layout:
    ca.crt, ca.key                 the lab's CA (key mode 0600)
    tls/<node>.crt, <node>.key     server certificate of a load balancer (reissued
                                   only when the names pointing at it change)
    db/<node>.password             a database's password (0600); kept by
                                   `lab down --volumes` too, so it always matches
                                   the data volume the database was made with
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from lab import pki
from lab.kinds import registry
from lab.kinds.registry import DB_PASSWORD, LAB_CA, TLS_CERTIFICATE
from lab.plan.model import LabState
from lab.topology.tls_names import addresses_of, names_pointing_at
from lab.topology import Lab

CA_CERT = "ca.crt"


def state_root() -> Path:
    base = os.environ.get("LAB_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "lab")
    return Path(base)


def state_dir(lab_name: str) -> Path:
    return state_root() / lab_name


def ca_cert_path(lab_name: str) -> Path:
    return state_dir(lab_name) / CA_CERT


def private_directory(path: Path) -> None:
    """A directory only its owner may enter (0700), even if it existed before."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def write_secret_file(path: Path, text: str) -> None:
    """Write a secret: created 0600 from the start, never readable by others even briefly."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_private(path: Path, text: str) -> None:
    """A secret in a directory only its owner may enter."""
    private_directory(path.parent)
    write_secret_file(path, text)


def _write_public(path: Path, text: str) -> None:
    private_directory(path.parent)
    path.write_text(text)
    os.chmod(path, 0o644)


def ca_scope(lab: Lab) -> tuple[list[str], list[str]]:
    """What the lab's CA may vouch for: names under the lab's zones, addresses in its subnets."""
    return list(lab.spec.zones), [str(n.subnet) for n in lab.spec.networks.values()]


def ensure_ca(directory: Path, lab_name: str, zones: list[str] = (), subnets: list[str] = ()) -> pki.KeyAndCert:
    """The lab's CA, made once, and again only when the lab's zones or subnets change (or
    an older CA had no name constraints). Both files must exist: a lone certificate cannot
    sign. A new CA reissues the server certificates (they no longer chain to the old one)."""
    cert, key = directory / CA_CERT, directory / "ca.key"
    if not (cert.exists() and key.exists()) or not pki.ca_permits_only(cert.read_text(), zones, subnets):
        ca = pki.make_ca(lab_name, zones, subnets)
        write_private(key, ca.key_pem)
        _write_public(cert, ca.cert_pem)
    return pki.KeyAndCert(key.read_text(), cert.read_text())


def ensure_server_cert(directory: Path, ca: pki.KeyAndCert, node: str,
                       names: list[str], addresses: list[str]) -> pki.KeyAndCert:
    """A load balancer's certificate, reissued only if its names or its CA changed."""
    cert, key = directory / "tls" / f"{node}.crt", directory / "tls" / f"{node}.key"
    if cert.exists() and key.exists():
        current = cert.read_text()
        if pki.cert_covers(current, names, addresses) and pki.signed_by(current, ca.cert_pem):
            return pki.KeyAndCert(key.read_text(), current)
    issued = pki.issue_server_cert(ca, names, addresses)
    write_private(key, issued.key_pem)
    _write_public(cert, issued.cert_pem)
    return issued


def ensure_password(directory: Path, node: str) -> str:
    path = directory / "db" / f"{node}.password"
    if not path.exists():
        # URL- and shell-safe characters: the password travels in files, never in a command line.
        write_private(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def ensure_lab_state(lab: Lab) -> LabState:
    """The lab's keys and passwords, made on first use and reused after."""
    directory = state_dir(lab.name)
    private_directory(directory)
    needs = {name: registry.get(node.kind).secrets for name, node in lab.spec.nodes.items()}
    values: dict[str, str] = {}
    if any(secrets & {LAB_CA, TLS_CERTIFICATE} for secrets in needs.values()):
        ca = ensure_ca(directory, lab.name, *ca_scope(lab))
        values[CA_CERT] = ca.cert_pem
        for name, secrets in needs.items():
            if TLS_CERTIFICATE in secrets:
                issued = ensure_server_cert(directory, ca, name, names_pointing_at(lab, name),
                                            addresses_of(lab, name))
                values[f"tls/{name}.crt"] = issued.cert_pem
                values[f"tls/{name}.key"] = issued.key_pem
    for name, secrets in needs.items():
        if DB_PASSWORD in secrets:
            values[f"db/{name}.password"] = ensure_password(directory, name)
    return LabState(values)
