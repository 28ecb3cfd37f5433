"""What a client's DNS cache (dnsmasq, lab/plan/stub.py) did with a lookup, from its own log.

dnsmasq with `log-queries=extra` numbers each query and repeats the number on every line
about it:

    Nov 29 07:40:01 dnsmasq[9]: 3 127.0.0.1/41234 query[A] www.shop.test from 127.0.0.1
    Nov 29 07:40:01 dnsmasq[9]: 3 127.0.0.1/41234 forwarded www.shop.test to 100.64.0.53
    Nov 29 07:40:01 dnsmasq[9]: 3 127.0.0.1/41234 reply www.shop.test is 198.18.10.10

or, answered from its cache, `cached www.shop.test is 198.18.10.10`. Pure functions only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

CACHE = "cache"            # answered from the stub's cache: nothing left the node
FORWARDED = "forwarded"    # asked the resolver
NOT_ASKED = "not asked"    # the log holds no query for the name

_LINE = re.compile(r"dnsmasq\[\d+\]: (?P<serial>\d+) \S+ (?P<what>query\[(?P<type>[A-Z0-9]+)\]|forwarded|cached|reply|"
                   r"config|validation) (?P<name>\S+) (?:from|to|is) (?P<value>.*)$")


@dataclass
class StubAnswer:
    node: str
    name: str
    outcome: str                    # CACHE, FORWARDED or NOT_ASKED
    answer: list[str] = field(default_factory=list)   # addresses (or 'NXDOMAIN'), as it logged them
    forwarded_to: str | None = None
    lines: list[str] = field(default_factory=list)    # its log lines about this query

    @property
    def from_cache(self) -> bool:
        return self.outcome == CACHE

    def as_dict(self) -> dict:
        return asdict(self)


def parse_stub_log(text: str, node: str, name: str, rtype: str = "A") -> StubAnswer:
    """The last query for name (of rtype) in the stub's log, and what the stub did with it."""
    wanted = name.rstrip(".").lower()
    parsed = [(line, _LINE.search(line)) for line in text.splitlines()]
    parsed = [(line, match) for line, match in parsed if match]
    serial = None
    for _, match in parsed:
        if match["what"].startswith("query") and match["type"] == rtype and match["name"].lower() == wanted:
            serial = match["serial"]
    if serial is None:
        return StubAnswer(node, name, NOT_ASKED)
    mine = [(line, match) for line, match in parsed if match["serial"] == serial]
    result = StubAnswer(node, name, NOT_ASKED, lines=[line.split(": ", 1)[-1] for line, _ in mine])
    for _, match in mine:
        if match["what"] == "cached":
            result.outcome = CACHE
            result.answer.append(match["value"].strip())
        elif match["what"] == "forwarded":
            result.outcome, result.forwarded_to = FORWARDED, match["value"].strip()
        elif match["what"] == "reply":
            result.answer.append(match["value"].strip())
    return result


def upstream_of_stub(conf: str) -> str | None:
    """The resolver address a dnsmasq.conf forwards to (its first `server=` line)."""
    for line in conf.splitlines():
        if line.startswith("server="):
            return line.split("=", 1)[1].strip().split("#")[0]
    return None
