"""What ``mprun run`` leaves for CI: ``--junit-xml``, the Markdown summary
(``--summary-md``, ``$GITHUB_STEP_SUMMARY``) and, under GitHub Actions, an
``::error`` annotation per failure.

The paths the command line names are checked before anything runs (a typo'd
folder is exit 2, not a run whose report is lost at the end); the files are
written once every config given has run, whatever their status, so CI gets
them after a failed or interrupted run too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import UsageError
from runner.observe import Observer

if TYPE_CHECKING:
    from runner.config import Config
    from runner.junit import JUnitRecorder
    from runner.report import RunReport

__all__ = ["CiOutputs", "check_writable"]


def check_writable(option: str, path: str) -> None:
    """UsageError (``OPTION PATH: reason``) unless ``path`` can be written, as a file."""
    target = Path(path)
    reason = None
    if target.is_dir():
        reason = "is a directory"
    elif not target.parent.is_dir():
        reason = (f"{target.parent} is not a folder" if target.parent.exists()
                  else f"no such folder: {target.parent}")
    else:
        reason = _probe(target)
    if reason is not None:
        raise UsageError(f"{option} {path}: {reason}")


def _probe(target: Path) -> str | None:
    """Why ``target`` cannot be written (None: it can), trying it for real: an existing
    file opened to append (nothing written), else a scratch file beside it."""
    try:
        if target.exists():
            with open(target, "ab"):
                pass
        else:
            probe = target.with_name(f".{target.name}.{os.getpid()}.probe")
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


class CiOutputs(Observer):
    """Collects each run's report (and, with ``junit_xml``, its lines) for :meth:`finish`."""

    def __init__(self, *, junit_xml: str | None, summary_md: str | None, durations: int,
                 environ: Mapping[str, str] = os.environ) -> None:
        self.junit_xml, self.durations = junit_xml, durations
        self.markdown = [path for path in (environ.get("GITHUB_STEP_SUMMARY"), summary_md)
                         if path]
        self.annotate = environ.get("GITHUB_ACTIONS") == "true"
        self.reports: list[RunReport] = []
        self.recorder: JUnitRecorder | None = None
        if junit_xml is not None:
            from runner.junit import JUnitRecorder

            self.recorder = JUnitRecorder()

    @property
    def observers(self) -> list[Observer]:
        """What the runs need told of their events: nothing unless a CI output is asked."""
        if not (self.recorder or self.markdown or self.annotate):
            return []
        return [self] if self.recorder is None else [self.recorder, self]

    def run_finished(self, report: RunReport) -> None:
        self.reports.append(report)

    def finish(self, configs: Sequence[Config]) -> bool:
        """Write the files and print the annotations; False if a file could not be
        written (said on stderr)."""
        ok = True
        if self.recorder is not None and self.junit_xml is not None:
            ok = _written("--junit-xml", self.junit_xml, self.recorder.write)
        if self.reports and self.markdown:
            from runner.ghsummary import markdown

            text = "".join(markdown(report, self.durations) for report in self.reports)
            for path in self.markdown:
                ok = _written("the Markdown summary", path, _appender(text)) and ok
        if self.annotate:
            self._annotate(configs)
        return ok

    def _annotate(self, configs: Sequence[Config]) -> None:
        from runner.ghsummary import error_lines

        for report in self.reports:
            config = next((c for c in configs if c.source == report.config), None)
            lines = {} if config is None else {
                name: config.key_line(("jobs", name)) for name in config.jobs}
            for line in error_lines(report, lines):
                print(line, file=sys.stderr)
        sys.stderr.flush()


def _appender(text: str) -> Callable[[str], None]:
    def append(path: str) -> None:
        with open(path, "a", encoding="utf-8") as file:
            file.write(text)
    return append


def _written(what: str, path: str, write: Callable[[str], None]) -> bool:
    try:
        write(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            print(f"mprun: error: cannot write {what} {path}: {exc.strerror or exc}",
                  file=sys.stderr, flush=True)
        return False
    return True
