"""Every invalid topology under tests/fixtures/invalid produces exactly its expected problems."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.topology import TopologyError, load_topology

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "invalid"
CASES = sorted(FIXTURES.glob("*.yaml"))


def expected_lines(case: Path) -> list[str]:
    text = case.with_suffix(".expected").read_text()
    return [line.replace("FILE:", f"{case}:", 1) for line in text.splitlines()]


def test_there_is_a_corpus_of_mistakes():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_fixture_reports_its_exact_problems(case: Path):
    with pytest.raises(TopologyError) as caught:
        load_topology(case)
    assert [str(p) for p in caught.value.problems] == expected_lines(case)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_problems_are_sorted_by_line(case: Path):
    with pytest.raises(TopologyError) as caught:
        load_topology(case)
    positions = [(p.line, p.column) for p in caught.value.problems]
    assert positions == sorted(positions)


@pytest.mark.parametrize("case", CASES[:5], ids=lambda p: p.stem)
def test_cli_exits_2_with_no_traceback(case: Path):
    result = CliRunner().invoke(main, ["validate", str(case)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert expected_lines(case)[0] in result.output
