"""The benchmark harness runs end to end at smoke size, and every workload answers correctly.

Runs ``python -m bench --smoke --out TMP`` as a subprocess. Timings are not
checked (smoke sizes make them meaningless): only the exit code, that the
table lists every workload with a correct-answer mark (✓) on every row that
was not skipped, and that smoke mode leaves ``bench/results.md`` alone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ["tiny", "cpu", "start-up", "io", "shared-data", "worker-memory", "timeout"]
# | workload | variant | size | best | median | unit | runs | ratio | vs | answer |
ANSWER_COLUMN = 10


def _rows(table: str) -> list[list[str]]:
    cells = [re.split(r"(?<!\\)\|", line)[1:-1] for line in table.splitlines()
             if line.startswith("| ") and not line.startswith("| workload ")]
    return [[cell.strip() for cell in row] for row in cells]


@pytest.mark.timeout(300)
def test_bench_smoke_runs_every_workload_with_correct_answers(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    kept = ROOT / "bench" / "results.md"
    before = kept.stat().st_mtime_ns if kept.exists() else None
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=280,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert out.read_text().strip() == proc.stdout.strip(), "--out must hold the printed tables"

    results = proc.stdout.split("## Results", 1)[1].split("## Targets", 1)[0]
    rows = _rows(results)
    for name in WORKLOADS:
        answers = [row[ANSWER_COLUMN - 1] for row in rows if row[0] == name]
        assert answers, f"workload {name} is missing from the table:\n{results}"
        assert "✓" in answers, f"{name} has no correct-answer mark:\n{results}"
        for answer in answers:
            assert answer == "✓" or answer.startswith("skipped:"), f"{name}: {answer}"
    assert (kept.stat().st_mtime_ns if kept.exists() else None) == before, \
        "--smoke must not overwrite bench/results.md"
