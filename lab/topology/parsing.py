"""How the topology's types read a value the user wrote, and show it back in an error.

Shared by the IPv4 model and its IPv6 types: the same words for the same mistakes.
"""

from __future__ import annotations

from typing import Any


def shown(value: Any) -> str:
    """A value as the user wrote it, control characters escaped (never a Python repr); text in
    quotes, so a number and the text of a number are told apart."""
    text = str(value)
    escaped = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return f"'{escaped}'" if isinstance(value, str) else escaped


def parse_network(value: Any, network_type: type, noun: str, example: str) -> Any:
    """value as an IPv4Network or IPv6Network (network_type); a ValueError that says what it is
    not, with an example, or the network it meant when only host bits are wrong."""
    wrong = f"{shown(value)} is not {noun}: write it like {example}"
    if not isinstance(value, str):
        raise ValueError(wrong)
    try:
        return network_type(value)
    except ValueError:
        pass
    try:
        intended = network_type(value, strict=False)
    except ValueError:
        raise ValueError(wrong) from None
    raise ValueError(f"{shown(value)} has host bits set; did you mean '{intended}'?")
