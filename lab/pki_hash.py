"""OpenSSL's subject hash of a certificate, computed in Python.

OpenSSL finds a trusted CA in a certificate directory by a link named after the hash of
the CA's subject (`openssl x509 -hash`): the first four bytes, little-endian, of the SHA-1
of the subject's canonical encoding. Every node used to run openssl once at start to learn
it (15-20 ms of CPU each, two CPU-seconds in a 100-node lab); the planner computes it once.

The canonical encoding (OpenSSL's x509_name_canon): each relative distinguished name as a
DER SET of (type, value) pairs, one after the other with no outer SEQUENCE; a value of a
string type becomes a UTF8String with its leading and trailing white space removed, each
inner run of white space turned into one space and ASCII letters lowered.
"""

from __future__ import annotations

import hashlib

from cryptography import x509

# The ASN.1 string tags OpenSSL canonicalises (ASN1_MASK_CANON): UTF8String, PrintableString,
# T61String, IA5String, VisibleString, UniversalString, BMPString.
_CANONICAL_STRING_TAGS = {12, 19, 20, 22, 26, 28, 30}
_SPACE = b" \t\n\v\f\r"
_UTF8_STRING, _OID, _SEQUENCE, _SET = 0x0C, 0x06, 0x30, 0x31


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _der(_OID, bytes(body))


def _canonical_text(value: str) -> bytes:
    raw = value.encode("utf-8").strip(_SPACE)
    out = bytearray()
    previous_space = False
    for byte in raw:
        if byte in _SPACE:
            if not previous_space:
                out.append(0x20)
            previous_space = True
            continue
        previous_space = False
        out.append(byte + 32 if 0x41 <= byte <= 0x5A else byte)
    return bytes(out)


def _canonical_attribute(attribute: x509.NameAttribute) -> bytes:
    tag = attribute._type.value   # the string type the certificate holds
    if tag not in _CANONICAL_STRING_TAGS or not isinstance(attribute.value, str):
        raise ValueError(f"a subject attribute of ASN.1 type {tag} is not supported")
    return _der(_SEQUENCE, _oid(attribute.oid.dotted_string) + _der(_UTF8_STRING, _canonical_text(attribute.value)))


def subject_hash(cert_pem: str) -> str:
    """What `openssl x509 -noout -hash` prints for this certificate (eight hex digits)."""
    subject = x509.load_pem_x509_certificate(cert_pem.encode()).subject
    encoded = b""
    for rdn in subject.rdns:
        # DER orders a SET's members by their encodings.
        encoded += _der(_SET, b"".join(sorted(_canonical_attribute(a) for a in rdn)))
    digest = hashlib.sha1(encoded).digest()
    return f"{int.from_bytes(digest[:4], 'little'):08x}"
