"""The ``mprun`` command: parse, call the library, map errors to exit codes.

This module is the main module of every worker under forkserver and spawn
(they import the parent's ``__main__``), so it imports nothing heavy at the
top (only stdlib-only modules every worker loads anyway): pydantic, yaml,
structlog and the job modules load inside ``main()``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from runner.errors import EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE
from runner.observe import Observer

if TYPE_CHECKING:
    from runner.observe import JobStart
    from runner.report import RunReport

__all__ = ["main"]

COMMANDS = ("run", "validate", "schema")
_TAKES_VALUE = ("--only", "--log-dir", "--log-level", "--start-method", "--wait", "--grace",
                "--resume")


def _parser() -> argparse.ArgumentParser:
    from runner import __version__
    from runner.context import START_METHODS

    parser = argparse.ArgumentParser(
        prog="mprun",
        description="Run Python functions in parallel as a YAML config describes.",
        epilog="`mprun CONFIG...` is short for `mprun run CONFIG...`. Exit codes: 0 ok, "
               "1 a task failed, 2 invalid config or usage, 75 another run of the config "
               "is still going, 130 SIGINT, 143 SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"mprun {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the jobs of one or more configs")
    run.add_argument("configs", nargs="+", metavar="CONFIG")
    run.add_argument("--only", action="append", metavar="JOB",
                     help="run just this job (repeatable); the whole config is still validated")
    run.add_argument("--json", action="store_true",
                     help="print only the JSON report on stdout (task output goes to stderr)")
    run.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    run.add_argument("--log-dir", default=os.environ.get("MPRUN_LOG_DIR", "logs"),
                     help="where run folders go (default: logs, or $MPRUN_LOG_DIR)")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    run.add_argument("--start-method", choices=START_METHODS,
                     help="beats the config's start_method (default: forkserver on Linux)")
    run.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS",
                     help="if another run of the same config is going, wait up to SECONDS "
                          "for it to end (default 0: exit 75 at once)")
    run.add_argument("--grace", type=_seconds, default=None, metavar="SECONDS",
                     help="on the first SIGINT/SIGTERM, start no more tasks and give running "
                          "ones SECONDS to finish before stopping them (default 5; 0: stop "
                          "at once); a second signal stops them at once")

    run.add_argument("--resume", metavar="RUN_ID",
                     help="run only the tasks that did not succeed in that earlier run "
                          "(a folder under --log-dir, or 'latest'); its results are reused")
    run.add_argument("--force", action="store_true",
                     help="with --resume: resume even though the config's tasks changed")

    validate = commands.add_parser("validate", help="check configs without running anything")
    validate.add_argument("configs", nargs="+", metavar="CONFIG")

    commands.add_parser("schema", help="print the JSON Schema of the config format")
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    parser = _parser()
    options = parser.parse_args(args)
    if options.command is None:
        parser.print_usage(sys.stderr)
        print("mprun: error: give a CONFIG to run, or a command", file=sys.stderr)
        return EXIT_USAGE
    from runner.errors import ConfigError, MprunError, exit_code_for

    try:
        if options.command == "schema":
            return _schema()
        if options.command == "validate":
            return _validate(options.configs)
        return _run(options)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return exit_code_for(exc)
    except MprunError as exc:
        print(f"mprun: error: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:  # before a run's own handlers are in place
        return EXIT_INTERRUPTED + signal.SIGINT


def _with_default_command(args: list[str]) -> list[str]:
    """``mprun [OPTIONS] CONFIG...`` means ``mprun run [OPTIONS] CONFIG...``."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _TAKES_VALUE:
            index += 2
        elif arg.startswith("-"):
            index += 1
        else:
            return args if arg in COMMANDS else ["run", *args]
    return args


def _schema() -> int:
    import json

    from runner.config import Config

    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mprun config"
    print(json.dumps(schema, indent=2))
    return EXIT_OK


def _load_all(paths: Sequence[str]) -> list[Any]:
    """Load every config before running any; all their problems are reported together."""
    from runner.errors import ConfigError
    from runner.loader import load_config

    configs, issues = [], []
    for path in paths:
        try:
            configs.append(load_config(path))
        except ConfigError as exc:
            issues += exc.issues
    if issues:
        raise ConfigError(issues)
    return configs


def _validate(paths: Sequence[str]) -> int:
    for config in _load_all(paths):
        jobs = ", ".join(config.jobs)
        print(f"{config.source}: ok ({len(config.jobs)} job{'s' * (len(config.jobs) != 1)}: "
              f"{jobs})")
    return EXIT_OK


def _run(options: argparse.Namespace) -> int:
    from runner.errors import RunLocked, UsageError
    from runner.report import render
    from runner.session import DEFAULT_GRACE, run

    if options.resume is not None and len(options.configs) > 1:
        raise UsageError("--resume takes one config: a run id belongs to one config's run")
    if options.force and options.resume is None:
        raise UsageError("--force goes with --resume RUN_ID")
    configs = _load_all(options.configs)
    reports: list[RunReport] = []
    exit_code = EXIT_OK
    observers = [] if options.quiet else [_Progress()]
    with _stdout_to_stderr(options.json) as stdout:
        for config in configs:
            try:
                report = run(config, only=options.only, log_dir=options.log_dir,
                             log_level=options.log_level, start_method=options.start_method,
                             observers=observers, stdout_to_stderr=options.json,
                             wait=options.wait,
                             grace=DEFAULT_GRACE if options.grace is None else options.grace,
                             resume=options.resume, force=options.force)
            except RunLocked as exc:  # this config is skipped; the others still run
                hint = "" if options.wait else "; give --wait SECONDS to wait for it"
                print(f"mprun: error: {exc}{hint}", file=sys.stderr, flush=True)
                exit_code = max(exit_code, EXIT_LOCKED)
                continue
            reports.append(report)
            if not options.json and not options.quiet:
                print(render(report), file=stdout, flush=True)
            if report.status == "interrupted":
                break
    if options.json and (reports or len(options.configs) > 1):
        from runner.jsonable import dumps_document

        docs = [report.as_dict() for report in reports]
        sys.stdout.flush()
        sys.stdout.buffer.write(dumps_document(docs[0] if len(options.configs) == 1 else docs))
        sys.stdout.flush()
    return max([exit_code, *(report.exit_code for report in reports)])


class _Progress(Observer):
    """The run's progress lines on stderr."""

    def waiting_for_lock(self, holder: dict[str, Any], config: str | None,
                         wait: float) -> None:
        print(f"mprun: {config} is already running (pid {holder.get('pid', '?')}, "
              f"run {holder.get('run_id', '?')}); waiting up to {wait:g}s for it",
              file=sys.stderr, flush=True)

    def stopping(self, signum: int, grace: float) -> None:
        # Called in a signal handler: print() there can hit a reentrant-write error.
        name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
        os.write(2, f"mprun: {name}: starting no more tasks; running ones have "
                    f"{grace:g}s to finish (send it again to stop them now)\n".encode())

    def job_started(self, event: JobStart) -> None:
        workers = event.workers
        print(f"mprun: {event.job}: {event.tasks} task{'s' * (event.tasks != 1)} "
              f"in {event.mode} mode, {workers} worker{'s' * (workers != 1)}",
              file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[TextIO]:
    """With --json, point file descriptor 1 at stderr for the run (threads, C code and
    child processes included), so that stdout carries only the JSON document."""
    if not active:
        yield sys.stdout
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield sys.stdout
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
