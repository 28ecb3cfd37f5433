"""YAML 1.1 traps: plain values that PyYAML would silently change are read as written.

Where the field can use the text as written (a firewall port range, a word, a
description), it does; where it wants a number, the value is refused with the
fix. Each test checks the value the lab ends up with, not only that it loads.
"""

from pathlib import Path

import pytest
import yaml

from lab.firewall.policy import node_policy
from lab.plan.iptables import render_rules
from lab.topology import TopologyError, load_text

VALID = (Path(__file__).resolve().parents[1] / "fixtures" / "valid-small.yaml").read_text()
FIREWALL = ("  fw:\n    kind: firewall\n    networks: [dmz, lan]\n    rules:\n"
            "      - {name: ssh, from: any, to: lb, ports: PORTS, log: LOG}\nzones:")


def with_firewall(ports: str, log: str = "false") -> str:
    return VALID.replace("zones:", FIREWALL.replace("PORTS", ports).replace("LOG", log), 1)


def test_pyyaml_alone_would_change_these_values():
    # The premise of this file, checked against PyYAML itself.
    assert yaml.safe_load("p: 22:23")["p"] == 1343
    assert yaml.safe_load("e: no")["e"] is False
    assert yaml.safe_load("t: 0300")["t"] == 192


def test_a_plain_port_range_22_23_is_the_range_not_port_1343():
    lab = load_text(with_firewall("22:23"))
    assert lab.spec.nodes["fw"].rules[0].ports == ((22, 23),)
    rendered = render_rules(node_policy(lab, "fw"), filtering=True, logging=False)
    assert "--dport 22:23" in rendered and "1343" not in rendered


def test_ranges_in_a_list_mix_with_ports():
    lab = load_text(with_firewall("[80, 8000:8010, '9000-9001']"))
    assert lab.spec.nodes["fw"].rules[0].ports == ((80, 80), (8000, 8010), (9000, 9001))


@pytest.mark.parametrize("word,meant", [("yes", True), ("on", True), ("no", False), ("off", False)])
def test_yes_no_words_in_true_false_fields_mean_what_they_say(word, meant):
    assert load_text(with_firewall("22", log=word)).spec.nodes["fw"].rules[0].log is meant


def test_text_fields_keep_what_was_written():
    text = VALID.replace("    kind: client\n", "    kind: client\n    description: 2024-05-01\n", 1)
    text = text.replace("www: {A: lb}", "www: {A: lb, TXT: yes}")
    text += "checks:\n  - {name: a row, sql: select 1, on: db, expect: no}\n"
    text = text.replace("zones:", "  db: {kind: database, networks: [dmz]}\nzones:", 1)
    lab = load_text(text)
    assert lab.spec.nodes["pc"].description == "2024-05-01"
    assert lab.spec.zones["site.test"].records["www"]["TXT"] == ("yes",)
    assert lab.spec.checks[0].expect == "no"


@pytest.mark.parametrize("field,written,fix", [
    ("replicas: 2", "replicas: 1:30", "'1:30' is not a whole number (YAML 1.1 would read it as "
                                      "the base-60 number 90): write one number, in digits"),
    ("replicas: 2", "replicas: on", "'on' is a yes/no word, not a whole number"),
    ("replicas: 2", "replicas: 02", "'02' has a leading zero, so YAML 1.1 reads it as the octal "
                                    "number 2: write 2 without the zero"),
    ("replicas: 2", "replicas: 2024-05-01", "'2024-05-01' is not a whole number (YAML 1.1 would "
                                            "read it as a date (2024-05-01))"),
])
def test_number_fields_refuse_yaml11_values_with_the_fix(field, written, fix):
    with pytest.raises(TopologyError) as caught:
        load_text(VALID.replace(field, written), "t.yaml")
    [problem] = caught.value.problems
    assert problem.path == "nodes.web.replicas" and (problem.line, problem.column) == (28, 15)
    assert fix in problem.message


def test_quoted_values_are_never_yaml11_traps():
    lab = load_text(with_firewall("'22:23'", log="'yes'"))
    assert lab.spec.nodes["fw"].rules[0].ports == ((22, 23),) and lab.spec.nodes["fw"].rules[0].log
