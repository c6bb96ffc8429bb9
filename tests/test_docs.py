"""docs/benchmarks.md holds current results with their commands, not a diary: bounded in length and line width."""

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def test_benchmarks_doc_stays_a_results_page() -> None:
    lines = BENCHMARKS.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 400, f"{len(lines)} lines: move history to git, keep current figures"
    long = [n for n, line in enumerate(lines, 1) if len(line) > 160]
    assert not long, f"lines over 160 characters: {long[:5]}"
    assert sum("what did not help" in line.lower() for line in lines) <= 2
    assert "not a committed script" not in "\n".join(lines)
