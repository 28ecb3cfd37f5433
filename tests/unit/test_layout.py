"""The shared layout of read commands: words whole, tables that fit or stack, at any width."""

from types import SimpleNamespace

import pytest

from lab.cli.check_report import _results_lines
from lab.cli.firewall import _rules_lines
from lab.layout import Record, stacked, table_or_stacked, wrap


def plain(lines) -> list[str]:
    return [line.plain for line in lines]


def test_wrap_breaks_at_spaces_only_and_indents_the_rest():
    text = "answered from the resolver's cache (no server asked) after a long wait"
    lines = wrap(text, 30, 2, 6)
    assert all(len(line) <= 30 for line in lines) and lines[0].startswith("  a")
    assert all(line.startswith(" " * 6) for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == text
    assert wrap("", 80) == []


def test_a_table_that_fits_stays_a_table_else_it_stacks():
    columns, rows = ["name", "packets"], [["web-in", "12"], ["site-dns-tcp", "3456"]]
    records = [Record(r[0], [("packets", r[1])]) for r in rows]
    wide = plain(table_or_stacked(columns, rows, records, 40, frozenset({"packets"})))
    assert wide == ["name          packets", "web-in             12", "site-dns-tcp     3456"]
    narrow = plain(table_or_stacked(columns, rows, records, 16))
    assert narrow == ["web-in", "    packets 12", "site-dns-tcp", "    packets 3456"]


def test_stacked_fields_move_whole_to_the_next_line_and_only_a_too_long_one_wraps():
    record = Record("1. web-in: allow", [("chain", "FORWARD"), ("from", "any"), ("to", "lb"),
                                          ("seen", "no response (curl: (7) Failed to connect to server)")])
    lines = plain(stacked([record], 30))
    assert all(len(line) <= 30 for line in lines)
    assert lines[:3] == ["1. web-in: allow", "    chain FORWARD  from any", "    to lb"]
    assert " ".join(line.strip() for line in lines[3:]) == "seen no response (curl: (7) Failed to connect to server)"


def rule(name, packets, builtin=False):
    return {"chain": "FORWARD", "name": name, "from": "any", "to": "lb", "proto": "tcp", "ports": "80,443",
            "action": "allow", "builtin": builtin, "packets": packets, "bytes": packets * 60}


@pytest.mark.parametrize("width", [40, 80, 120])
def test_firewall_rules_keep_names_and_counters_whole_at_any_width(width):
    rows = [rule("web-in", 123456), rule("established-replies", 7, builtin=True), rule("site-dns-tcp", 0)]
    lines = plain(_rules_lines("fw", rows, width))
    assert max(len(line) for line in lines) <= width
    words = {word for line in lines for word in line.replace(":", " ").split()}
    assert {"web-in", "established-replies", "site-dns-tcp", "123456", "7407360"} <= words
    gateways = ",".join(f"198.18.{n}.254/32" for n in range(40, 100, 10))   # the seal's long address lists
    sealed = plain(_rules_lines("fw", [{**rule("engine-gateway", 0, builtin=True), "to": gateways}], width))
    assert max(len(line) for line in sealed) <= width
    assert {f"198.18.{n}.254/32" for n in range(40, 100, 10)} <= {w.strip(",") for l in sealed for w in l.split()}


@pytest.mark.parametrize("width", [80, 120])
def test_check_results_keep_names_whole_and_stack_when_narrow(width):
    results = [SimpleNamespace(passed=True, name="the shop's name resolves to the load balancer", kind="resolve",
                               node="laptop", expected="198.18.10.10", seen="198.18.10.10"),
               SimpleNamespace(passed=False, name="the shop answers over HTTPS, verified with the lab's CA",
                               kind="http", node="laptop", expected="status 200 and a page containing 'The lab shop'",
                               seen="no response (curl: (7) Failed to connect to www.shop.test port 443 after "
                                    "2 ms: Couldn't connect to server)")]
    lines = plain(_results_lines("lab shop: checks", results, width))
    assert max(len(line) for line in lines) <= width
    assert any("the shop's name resolves to the load balancer" in line for line in lines)
    assert any("FAIL" in line and "the shop answers over HTTPS" in line for line in lines)
