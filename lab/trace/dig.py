"""dig's answers as values: its text output parsed into sections and records.

Pure: the CLI, the checks and the traces get typed answers and never see raw text;
unit tests feed it recorded output.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field


@dataclass
class DnsRecord:
    name: str
    ttl: int
    type: str
    data: str


@dataclass
class DigAnswer:
    """What dig saw: the server that replied, the status, flags and every section."""

    name: str
    type: str
    server: str = ""
    status: str = ""
    flags: list[str] = field(default_factory=list)
    answer: list[DnsRecord] = field(default_factory=list)
    authority: list[DnsRecord] = field(default_factory=list)
    additional: list[DnsRecord] = field(default_factory=list)
    query_ms: int | None = None
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def values(self, rtype: str | None = None) -> list[str]:
        return [r.data for r in self.answer if rtype is None or r.type == rtype]


SECTION = re.compile(r"^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:")


def parse_dig(text: str, name: str, rtype: str) -> DigAnswer:
    answer = DigAnswer(name, rtype)
    current = None
    for line in text.splitlines():
        if m := re.search(r"status: ([A-Z]+)", line):
            answer.status = m.group(1)
        elif m := re.match(r";; flags: ([a-z ]*)[;]", line):
            answer.flags = m.group(1).split()
        elif m := SECTION.match(line):
            current = getattr(answer, m.group(1).lower())
        elif m := re.match(r";; Query time: (\d+) msec", line):
            answer.query_ms = int(m.group(1))
        elif m := re.match(r";; SERVER: ([0-9A-Fa-f.:]+)#", line):
            answer.server = m.group(1)
        elif line.startswith(";; connection timed out") or line.startswith(";; communications error"):
            answer.error = line.removeprefix(";; ")
        elif current is not None and line and not line.startswith(";"):
            fields = line.split(None, 4)
            if len(fields) == 5:
                current.append(DnsRecord(fields[0], int(fields[1]), fields[3], fields[4]))
        elif not line:
            current = None
    return answer
