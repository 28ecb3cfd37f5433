"""`lab validate` on bad files: JSON problems for programs, exit 2 even with --debug."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.topology import TopologyError, load_topology

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "invalid"
HOSTILE = ["alias-bomb", "alias-self-reference", "deep-nesting", "not-utf8", "nul-byte",
           "escape-in-name", "resolver-roots-blocked", "yaml11-forward-sexagesimal"]


@pytest.mark.parametrize("name", HOSTILE)
def test_json_problems_are_the_loaders_problems(name):
    case = FIXTURES / f"{name}.yaml"
    result = CliRunner().invoke(main, ["validate", "--json", str(case)])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    with pytest.raises(TopologyError) as caught:
        load_topology(case)
    assert report["valid"] is False
    assert [(p["line"], p["column"], p["path"], p["message"]) for p in report["problems"]] == \
        [(p.line, p.column, p.path, p.message) for p in caught.value.problems]
    assert all(p["file"] == str(case) for p in report["problems"])


@pytest.mark.parametrize("name", HOSTILE)
def test_text_output_has_no_traceback_and_no_raw_control_characters(name):
    result = CliRunner().invoke(main, ["validate", str(FIXTURES / f"{name}.yaml")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "\x1b" not in result.output


def test_debug_shows_the_traceback_and_keeps_exit_2():
    result = CliRunner().invoke(main, ["--debug", "validate", str(FIXTURES / "cname-loop.yaml")])
    assert result.exit_code == 2
    assert "Traceback" in result.output and "TopologyError" in result.output


@pytest.mark.parametrize("command", [["graph"], ["export", "compose", "--no-files"]])
def test_writing_into_a_missing_folder_is_a_usage_error_before_any_work(tmp_path, command):
    target = tmp_path / "missing" / "out.txt"
    topology = Path(__file__).resolve().parents[2] / "topology" / "minimal.yaml"
    result = CliRunner().invoke(main, [*command, "-o", str(target), str(topology)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"the folder {target.parent} does not exist" in result.output
    assert not target.parent.exists()
