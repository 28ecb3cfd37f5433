"""The `checks:` section: every name, placeholder and expectation must refer to something.

A check that names nothing would only fail (or worse, pass) once the lab runs;
these are found in the file, at the field that says it.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from lab.topology.model import DATABASE_KIND, RECORD_TYPES, Check
from lab.topology.as_checks import check_route
from lab.topology.structure import suggest

if TYPE_CHECKING:
    from lab.topology.checks import Checker

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")     # '{web}' in an http URL: node web's address
QUERY_TYPES = (*RECORD_TYPES, "SOA")          # what a resolve check may ask for
STATUS_CODES = range(100, 600)


def shown(value) -> str:
    """A value as the user wrote it, control characters escaped."""
    return "'" + "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(value)) + "'"


def _is_ipv4(text: str) -> bool:
    try:
        IPv4Address(text)
        return True
    except ValueError:
        return False


def check_one(checker: "Checker", index: int, check: Check) -> None:
    path = ("checks", index)
    names = checker.instance_names | set(checker.spec.nodes)
    if check.from_ is not None and check.from_ not in checker.instance_names:
        checker.error((*path, "from"), f"unknown node '{check.from_}'{suggest(check.from_, checker.instance_names)}")
    if check.reach is not None and check.reach not in checker.instance_names:
        checker.error((*path, "reach"), f"unknown node '{check.reach}'{suggest(check.reach, checker.instance_names)}")
    if check.flow is not None:
        _flow(checker, path, check)
    if check.route is not None:
        check_route(checker, path, check)
    if check.sql is not None:
        if check.on is None:
            checker.error(path, "an sql check needs 'on: DATABASE_NODE'")
        else:
            checker.node_ref((*path, "on"), check.on, (DATABASE_KIND,), "an sql check's 'on'")
    if check.resolve is not None:
        _resolve(checker, path, check, names)
    if check.http is not None:
        _http(checker, path, check, names)
    if check.kind == "reach" and check.expect is not None:
        checker.error((*path, "expect"), "a reach check expects an answer to ping and takes no "
                      "'expect': remove it")
    if check.contains is not None and check.kind not in ("http", "sql"):
        checker.error((*path, "contains"), f"'contains' is for http and sql checks, not {check.kind}: "
                      "remove it")


def _flow(checker: "Checker", path: tuple, check: Check) -> None:
    target, _, port = check.flow.rpartition(":")
    if not target or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        checker.error((*path, "flow"), f"{shown(check.flow)} is not NODE:PORT: write a node and a "
                      "port from 1 to 65535 in the digits 0-9, like web:8000")
    elif target not in checker.instance_names:
        checker.error((*path, "flow"), f"{shown(check.flow)} names no node '{target}'"
                      f"{suggest(target, checker.instance_names)}")
    if check.expect not in (None, "allowed", "blocked"):
        checker.error((*path, "expect"), f"{shown(check.expect)} is not what a flow can be: "
                      "write allowed or blocked")


def _resolve(checker: "Checker", path: tuple, check: Check, names: set[str]) -> None:
    if check.type not in QUERY_TYPES:
        checker.error((*path, "type"), f"unknown record type {shown(check.type)}"
                      f"{suggest(check.type.upper(), QUERY_TYPES)} (types: {', '.join(QUERY_TYPES)})")
    elif check.type == "A" and check.expect is not None:
        items = check.expect if isinstance(check.expect, list) else [check.expect]
        for item in items:
            if str(item) not in names and not _is_ipv4(str(item)):
                checker.error((*path, "expect"), f"{shown(item)} is neither a node nor an IPv4 "
                              f"address{suggest(str(item), names)}: an A answer is expected as "
                              "node names (all their addresses) or addresses")


def _http(checker: "Checker", path: tuple, check: Check, names: set[str]) -> None:
    for placeholder in PLACEHOLDER.findall(check.http):
        if placeholder not in checker.instance_names:
            checker.error((*path, "http"), f"the placeholder {{{placeholder}}} names no node"
                          f"{suggest(placeholder, checker.instance_names)} ({{NODE}} stands for "
                          "that node's address)")
    expect = check.expect
    if expect is not None and not (str(expect).isascii() and str(expect).isdigit()
                                   and int(expect) in STATUS_CODES):
        checker.error((*path, "expect"), f"{shown(expect)} is not an HTTP status: write a code "
                      "from 100 to 599, like 200")
