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
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from runner import quickexit
from runner.errors import EXIT_INTERRUPTED, EXIT_IO, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from runner.ci import CiOutputs
    from runner.config import Config
    from runner.errors import ConfigError, MprunError
    from runner.observe import Observer
    from runner.report import RunReport

__all__ = ["main"]

COMMANDS = ("run", "validate", "schema")
_TAKES_VALUE = ("--only", "--log-dir", "--log-level", "--start-method", "--wait", "--grace",
                "--resume", "--dask-scheduler", "--junit-xml", "--summary-md", "--durations")


class _CommandLineError(Exception):
    """Raised by :class:`_Parser` instead of printing and exiting, so that ``main()``
    can also leave a JSON document on stdout when ``--json`` was asked for."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        self.parser, self.message = parser, message
        super().__init__(message)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _CommandLineError(self, message)


def _parser() -> argparse.ArgumentParser:
    from runner import __version__
    from runner.context import START_METHODS

    parser = _Parser(
        prog="mprun",
        description="Run Python functions in parallel as a YAML config describes.",
        epilog="`mprun CONFIG...` is short for `mprun run CONFIG...`. Exit codes: 0 ok, 1 a "
               "task failed, 2 invalid config or usage, 74 stdout or the run's files cannot be "
               "written, 75 another run of the config is still going, 130 SIGINT, 143 SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"mprun {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the jobs of one or more configs")
    run.add_argument("configs", nargs="+", metavar="CONFIG")
    run.add_argument("--only", action="append", metavar="JOB",
                     help="run just this job (repeatable); the whole config is still validated")
    run.add_argument("--json", action="store_true",
                     help="print only the JSON report on stdout (task output goes to stderr)")
    run.add_argument("--quiet", "-q", action="store_true",
                     help="print nothing but errors: a line on stderr for each failed task")
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
    _dask_arguments(run)
    _ci_arguments(run)

    _validate_arguments(commands.add_parser("validate",
                                            help="check configs without running anything"))
    commands.add_parser("schema", help="print the JSON Schema of the config format")
    return parser


def _validate_arguments(validate: argparse.ArgumentParser) -> None:
    validate.add_argument("configs", nargs="+", metavar="CONFIG")
    validate.add_argument("--json", action="store_true",
                          help="print one JSON document per config on stdout (a list for "
                               "several): its jobs, or its problems")
    _dask_arguments(validate)


def _dask_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--dask", action="store_true",
                         help="run every process and pool job in mode dask (serial, thread "
                              "and compare jobs as they are)")
    command.add_argument("--dask-scheduler", metavar="ADDRESS",
                         help="the dask cluster to use (implies --dask; beats the config's "
                              "dask.scheduler and $DASK_SCHEDULER_ADDRESS)")


def _ci_arguments(run: argparse.ArgumentParser) -> None:
    """What a run leaves for CI (``runner.ci``) and how many slow tasks it names."""
    run.add_argument("--junit-xml", metavar="PATH",
                     help="write the run as JUnit XML: a testsuite per job, a testcase per "
                          "task or chunk (written even when tasks fail)")
    run.add_argument("--summary-md", metavar="PATH",
                     help="append a Markdown summary to PATH (as with $GITHUB_STEP_SUMMARY)")
    run.add_argument("--durations", type=_count, default=5, metavar="N",
                     help="show the N slowest tasks (default 5; 0: none)")


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    _hold_stdout()
    args = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    # Known before parsing, so that a command line argparse refuses still leaves JSON.
    wants_json = "--json" in args[:args.index("--")] if "--" in args else "--json" in args
    parser = _parser()
    try:
        options = parser.parse_args(args)
        options.console = argv is None  # the mprun command's own process (quickexit, forks)
        if options.command is None:
            raise _CommandLineError(parser, "give a CONFIG to run, or a command")
    except _CommandLineError as exc:
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
        if wants_json:
            from runner.report import invalid_document

            _print_document(invalid_document(None, [exc.message]))
        return EXIT_USAGE
    from runner import signals
    from runner.errors import Interrupted, MprunError, exit_code_for

    try:
        with signals.outside_runs(keep=argv is None):
            _settle_paths(options)
            if options.command == "schema":
                return _schema()
            if options.command == "validate":
                return _validate(options)
            code = _run(options)
        return quickexit.finish(code) if argv is None else code  # the console's: no teardown
    except Interrupted as exc:  # before a run began: nothing was written
        print(f"mprun: {signal.Signals(exc.signum).name}: stopped before any run began",
              file=sys.stderr)
        if getattr(options, "json", False):
            from runner.report import not_run_document

            paths = getattr(options, "configs", None) or [None]
            docs = [not_run_document(path, exc.exit_code) for path in paths]
            _print_document(docs[0] if len(docs) == 1 else docs)
        return exc.exit_code
    except MprunError as exc:  # a command line whose options do not go together
        _print_problem(exc)
        if getattr(options, "json", False) and exc.exit_code != EXIT_IO:
            from runner.report import invalid_document

            _print_document(invalid_document(None, [exc]))
        return exit_code_for(exc)
    except KeyboardInterrupt:  # before a run's own handlers are in place
        return EXIT_INTERRUPTED + signal.SIGINT


def _settle_paths(options: argparse.Namespace) -> None:
    """Before anything is read: a working directory that exists (``runner.workdir``), and
    the log folder made absolute, once, so that a task's ``os.chdir()`` moves nothing."""
    from runner import workdir

    log_dir = getattr(options, "log_dir", None)
    workdir.ensure_cwd([*getattr(options, "configs", ()), *([log_dir] if log_dir else [])])
    if options.command == "run":
        options.log_dir = str(workdir.log_root(log_dir))


def _print_problem(exc: MprunError) -> None:
    """A config's problems, one ``FILE:LINE:COL: path: message`` line each; any other
    error as one ``mprun: error:`` line; on stderr."""
    from runner.errors import ConfigError

    if isinstance(exc, ConfigError):
        for issue in exc.issues:
            print(issue, file=sys.stderr)
    else:
        print(f"mprun: error: {exc}", file=sys.stderr)


def _print_document(doc: Any) -> None:
    from runner.jsonable import dumps_document

    _out(dumps_document(doc))


_stdout_closed = False  # fd 1 was closed when mprun started (see _hold_stdout)


def _out(data: str | bytes) -> None:
    """Write ``data`` to stdout now. A reader that went away (a broken pipe: ``| head``)
    ends the output quietly, the files on disk being complete; any other failure (a
    full disk, a closed stdout, an encoding that cannot hold the text) is an
    OutputError: one line on stderr, exit 74."""
    from runner.errors import OutputError

    if _stdout_closed:
        raise OutputError("cannot write to stdout: it is closed")
    try:
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
    except BrokenPipeError:
        _point_stdout_at_devnull()  # later writes, and the flush at exit, go nowhere
    except (OSError, UnicodeEncodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _point_stdout_at_devnull()
        raise OutputError(f"cannot write to stdout: {reason}") from None


def _point_stdout_at_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    with contextlib.suppress(Exception):
        sys.stdout.flush()  # what was still buffered goes to /dev/null


def _hold_stdout() -> None:
    """A closed fd 1 would be taken by the next file opened (a log file would get what
    tasks print): hold it with /dev/null, and remember that stdout is closed."""
    global _stdout_closed
    try:
        os.fstat(1)
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != 1:
            os.dup2(devnull, 1)
            os.close(devnull)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 -- lives as long as mprun
        _stdout_closed = True


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

    from runner.schema import config_schema

    _out(json.dumps(config_schema(), indent=2) + "\n")
    return EXIT_OK


def _load_each(paths: Sequence[str], *, dask: bool = False, scheduler: str | None = None
               ) -> list[Config | ConfigError]:
    """Load every config before running any: each one's config (as ``--dask`` runs it),
    or its problems.

    Call it inside ``_stdout_to_stderr``: loading imports the job modules, and what
    they print at import time must not reach stdout under ``--json``.
    """
    from runner import daskconfig
    from runner.errors import ConfigError
    from runner.loader import load_config

    loaded: list[Config | ConfigError] = []
    for path in paths:
        try:
            config = daskconfig.scaled_out(load_config(path), dask=dask, scheduler=scheduler)
            daskconfig.check(config, scaled=dask or scheduler is not None)
            loaded.append(config)
        except ConfigError as exc:
            loaded.append(exc)
    return loaded


def _validate(options: argparse.Namespace) -> int:
    from runner.errors import ConfigError

    # Validate's stdout is its verdict: job modules' import-time prints go to stderr.
    with _stdout_to_stderr(True):
        loaded = _load_each(options.configs, dask=options.dask,
                            scheduler=options.dask_scheduler)
    if options.json:
        from runner.report import invalid_document, validated_document

        docs = [invalid_document(path, item.issues) if isinstance(item, ConfigError)
                else validated_document(path, list(item.jobs))
                for path, item in zip(options.configs, loaded, strict=True)]
        _print_document(docs[0] if len(docs) == 1 else docs)
    invalid = [item for item in loaded if isinstance(item, ConfigError)]
    for problem in invalid:
        _print_problem(problem)
    if invalid:
        return EXIT_USAGE
    if not options.json:
        for config in (item for item in loaded if not isinstance(item, ConfigError)):
            jobs = ", ".join(config.jobs)
            _out(f"{config.source}: ok ({len(config.jobs)} job"
                 f"{'s' * (len(config.jobs) != 1)}: {jobs})\n")
    return EXIT_OK


def _run(options: argparse.Namespace) -> int:
    """Load every config, check ``--only`` against each, then run them in turn.

    Under ``--json`` stdout gets one document whatever happens: a config's run
    report, or why it did not run (``runner.report.invalid_document``,
    ``not_run_document``); a list of them, one per config, when several are given.
    """
    from runner.errors import UsageError

    if options.resume is not None and len(options.configs) > 1:
        raise UsageError("--resume takes one config: a run id belongs to one config's run")
    if options.force and options.resume is None:
        raise UsageError("--force goes with --resume RUN_ID")
    ci = _ci_outputs(options)  # its paths checked before anything runs
    paths: list[str] = options.configs
    exit_code = EXIT_OK
    written: list[bytes | None] = [None] * len(paths)  # each config's summary.json bytes
    with _stdout_to_stderr(options.json):
        if not (options.dask or options.dask_scheduler):  # no fork server to warm
            _warm_early(paths, options.start_method, fork=options.console)  # first: see there
        from runner import signals
        from runner.progress import Progress

        observers: list[Observer] = [] if options.quiet else [Progress()]
        observers += ci.observers
        configs, docs = _load_for_run(paths, options)
        if any(docs):
            exit_code = EXIT_USAGE
        else:  # nothing runs once a config is invalid
            try:
                exit_code = _run_each(configs, paths, docs, written, options=options,
                                      observers=observers)
            finally:  # an interrupted run's files too
                if not ci.finish(configs):
                    exit_code = max(exit_code, EXIT_IO)
            quickexit.allow(not any(_runs_job_code_here(config) for config in configs))
    if signals.outside.signum is not None and exit_code < EXIT_INTERRUPTED:
        # It came as a run ended (later ones did not run); a run it interrupted has
        # the code of its own first signal already.
        exit_code = EXIT_INTERRUPTED + signals.outside.signum
    if options.json:
        _print_documents(paths, docs, written, exit_code)
    return exit_code


def _ci_outputs(options: argparse.Namespace) -> CiOutputs:
    """``--junit-xml``, ``--summary-md`` and GitHub's env vars; UsageError (exit 2) for
    a path that cannot be written."""
    from runner.ci import CiOutputs, check_writable

    for option, path in (("--junit-xml", options.junit_xml),
                         ("--summary-md", options.summary_md)):
        if path is not None:
            check_writable(option, path)
    return CiOutputs(junit_xml=options.junit_xml, summary_md=options.summary_md,
                     durations=options.durations)


def _warm_early(paths: list[str], start_method: str | None, *, fork: bool) -> None:
    """Start the fork server now, from the config cache's hints (``runner.configcache``),
    before the run's machinery is imported: its start-up overlaps the runner's. Not for a
    config whose jobs start no local worker (serial, thread and dask jobs only). Under
    --json its stdout is stderr already, as a worker's is. Forked from this process only
    for the console's ``mprun`` (``fork``): a program calling ``main(argv)`` has files and
    threads of its own. Only one config's job modules are preloaded: with several, a
    module name in two configs' folders would be the first config's in every worker."""
    from runner import configcache, context
    from runner.imports import search_paths

    hints = configcache.hints_for(paths[0])
    if hints is not None and hints.local_workers:
        one = len(paths) == 1
        folder = os.path.dirname(os.path.abspath(paths[0]))
        context.warm_forkserver_early(start_method or hints.start_method,
                                      hints.modules if one else [],
                                      search_paths(folder) if one else [], fork=fork)


def _print_documents(paths: list[str], docs: list[dict[str, Any] | None],
                     written: list[bytes | None], exit_code: int) -> None:
    """The ``--json`` output of a run: each config's document, a list of them for several.
    A run's document is its summary.json's bytes: no document is serialised twice."""
    from runner.jsonable import dumps_document
    from runner.report import not_run_document

    pieces = [data if data is not None else dumps_document(doc or not_run_document(path,
                                                                                   exit_code))
              for path, doc, data in zip(paths, docs, written, strict=True)]
    if len(pieces) == 1:
        _out(pieces[0])
    else:
        _out(b"[\n" + b",\n".join(piece.rstrip(b"\n") for piece in pieces) + b"\n]\n")


def _runs_job_code_here(config: Config) -> bool:
    """Whether some job of ``config`` runs its code in the runner's own process: a
    serial or thread mode, or a reducer of its own (``runner.quickexit``)."""
    from runner.executors import executor_for
    from runner.reducers import REDUCERS

    return any(executor_for(mode).in_runner_process or job.reduce not in (None, *REDUCERS)
               for job in config.jobs.values() for mode in job.modes())


def _run_each(configs: list[Config], paths: list[str], docs: list[dict[str, Any] | None],
              written: list[bytes | None], *, options: argparse.Namespace,
              observers: Sequence[Observer]) -> int:
    """Run the configs in turn, filling ``docs`` and ``written`` (each one's summary.json
    bytes); the exit code. A signal before a run began (waiting for its lock, say) ends
    the loop there: the reports so far stand, the rest did not run."""
    from runner import signals
    from runner.errors import Interrupted

    exit_code = EXIT_OK
    for index, config in enumerate(configs):
        if signals.outside.signum is not None:  # came while a report was printed
            break
        signals.outside.phase = "idle"
        try:
            doc, code, report = _run_one(config, paths[index], options, observers)
        except Interrupted as exc:
            print(f"mprun: {signal.Signals(exc.signum).name}: stopped before the run of "
                  f"{paths[index]} began", file=sys.stderr)
            return max(exit_code, exc.exit_code)
        docs[index], exit_code = doc, max(exit_code, code)
        if report is not None:
            written[index] = report.document
            _print_report(report, options, paths[index] if len(paths) > 1 else None)
            if report.status == "interrupted":
                break  # the later configs are not run
    return exit_code


def _run_one(config: Config, path: str, options: argparse.Namespace,
             observers: Sequence[Observer]) -> tuple[dict[str, Any], int, RunReport | None]:
    """Run one config: its ``--json`` document, its exit code and its report (None when
    it did not run: locked by another run, or a refused ``--resume``)."""
    from runner.errors import ConfigError, RunFilesError, RunLocked, UsageError
    from runner.report import invalid_document
    from runner.session import DEFAULT_GRACE, run

    try:
        report = run(config, only=options.only, log_dir=options.log_dir,
                     log_level=options.log_level, start_method=options.start_method,
                     observers=observers, stdout_to_stderr=options.json, wait=options.wait,
                     grace=DEFAULT_GRACE if options.grace is None else options.grace,
                     resume=options.resume, force=options.force,
                     durations=options.durations)
    except ConfigError as exc:  # a dask cluster that cannot be used: nothing ran
        _print_problem(exc)
        return invalid_document(path, exc.issues), exc.exit_code, None
    except RunLocked as exc:  # this config is skipped; the others still run
        hint = "" if options.wait else "; give --wait SECONDS to wait for it"
        print(f"mprun: error: {exc}{hint}", file=sys.stderr, flush=True)
        return (invalid_document(path, [exc], status="locked", exit_code=exc.exit_code),
                exc.exit_code, None)
    except UsageError as exc:  # --resume refused (it takes one config): nothing ran
        _print_problem(exc)
        return invalid_document(path, [exc]), exc.exit_code, None
    except RunFilesError as exc:  # the log folder cannot be written: nothing ran
        print(f"mprun: {exc}", file=sys.stderr, flush=True)
        return (invalid_document(path, [exc], status="failed", exit_code=exc.exit_code),
                exc.exit_code, None)
    if report.error is not None:  # mid-run: the report, from memory, is printed still
        print(f"mprun: {report.error}", file=sys.stderr, flush=True)
    return report.as_dict(), report.exit_code, report


def _load_for_run(paths: list[str], options: argparse.Namespace
                  ) -> tuple[list[Config], list[dict[str, Any] | None]]:
    """Every config loaded and checked for ``--only``'s jobs before the first runs: the
    valid ones, and per path the ``--json`` document of its problem (printed on stderr
    here), or None."""
    from runner.errors import MprunError, UsageError
    from runner.report import invalid_document
    from runner.session import select_jobs

    configs: list[Config] = []
    docs: list[dict[str, Any] | None] = []
    loaded = _load_each(paths, dask=options.dask, scheduler=options.dask_scheduler)
    for path, item in zip(paths, loaded, strict=True):
        problem: MprunError | None = None
        if isinstance(item, MprunError):
            problem = item
        else:
            configs.append(item)
            try:
                select_jobs(item, options.only)
            except UsageError as exc:
                problem = exc
        if problem is not None:
            _print_problem(problem)
        docs.append(None if problem is None else invalid_document(path, [problem]))
    return configs, docs


def _print_report(report: RunReport, options: argparse.Namespace,
                  config: str | None) -> None:
    """The human summary on stdout; with --quiet, each failed task's line on stderr;
    with --json, nothing (the document is printed at the end)."""
    from runner.report import failure_lines, render

    if options.quiet:
        for line in failure_lines(report, config=config):
            print(line, file=sys.stderr)
        sys.stderr.flush()
    elif not options.json:
        _out(render(report, options.durations) + "\n")


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
