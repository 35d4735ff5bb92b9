"""The human summary: readable whatever the size of results and shared state."""

from __future__ import annotations

from runner.report import JobReport, RunReport, render


def make_report(results: list, shared: dict) -> RunReport:
    job = JobReport(name="big", mode="pool", workers=2, status="ok", tasks=len(results),
                    ok=len(results), failed=0, seconds=1.0, results=results)
    return RunReport(run_id="r", config="c.yaml", status="ok", exit_code=0, seconds=1.0,
                     log_dir=None, jobs=[job], shared=shared)


def test_long_results_and_shared_arrays_are_shortened():
    text = render(make_report(list(range(100_000)), {"array": list(range(1_000_000))}))
    lines = text.splitlines()
    results = next(line for line in lines if "results:" in line)
    assert results.strip() == "results: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... (99,990 more)]"
    array = next(line for line in lines if "array =" in line)
    assert array.endswith("(1,000,000 items)]")
    assert len(array) < 100
    assert lines[-1] == "ok (exit 0) in 1.00s"
