"""Load a config file: read, parse, merge defaults, validate, check, in one pass.

Every problem found is collected and raised at once as one :class:`ConfigError`
whose issues read ``FILE:LINE:COL: jobs.add.workers: message``: YAML problems,
schema errors, and what ``runner.checks`` finds (refs, map files, imports,
pickling), so a broken config is fixed in one round. Only a YAML syntax error,
which stops the parser, can hide later problems. What ``${VAR}``s with a
secret-looking name expanded to is registered with ``runner.redact`` as soon
as the YAML is read, and kept on the config (``Config.secret_values``) for the
run's worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner import checks, configcache, redact
from runner.config import Config, Loc
from runner.errors import ConfigError, ConfigIssue, JobImportError
from runner.files import MAX_CONFIG_BYTES, FileRefused, read_regular

__all__ = ["MAX_CONFIG_BYTES", "load_config"]


def load_config(path: str | os.PathLike[str], *, check_functions: bool = True,
                before_imports: Callable[[Config], None] | None = None) -> Config:
    """Read and validate the config at ``path``; raise ConfigError listing every problem.

    With ``check_functions`` (the default) each job's function is imported and
    checked to be callable, with the config's folder and the working directory
    on ``sys.path``. ``before_imports(config)`` is called when nothing but the
    imports is left to check, so that a run can start what needs only the
    config (the fork server) while the job modules import. A config validated
    before, unchanged, comes from ``runner.configcache`` without pydantic
    (``runner.validation`` is the miss); what it names outside itself (map
    files, functions) is checked again all the same.
    """
    source = Path(path)
    name = str(path)
    text = _read(source, name)
    cache_key = configcache.key(name, text)
    cached = configcache.lookup(cache_key)
    if cached is not None:  # it passed every check but those of the world outside it
        return _checked(cached, None, source, [], _issues,
                        known_good=configcache.modes_built_in(),
                        check_functions=check_functions, before_imports=before_imports)
    from runner.validation import validate

    done = validate(text, name, str(source))
    config = _checked(done.config, done.data, source, done.issues, done.fresh,
                      locate=done.locate, check_functions=check_functions,
                      before_imports=before_imports)
    if not done.doc.secrets:  # a secret's value is never written to the cache
        configcache.store(cache_key, config, done.doc.environ_read)
    return config


def _checked(config: Config | None, data: Any, source: Path, issues: list[ConfigIssue],
             fresh: Callable[[list[tuple[Loc, ConfigIssue]]], list[ConfigIssue]], *,
             locate: Callable[[Loc, str], ConfigIssue] | None = None, check_functions: bool,
             before_imports: Callable[[Config], None] | None,
             known_good: bool = False) -> Config:
    """``runner.checks``' checks beyond the schema (of the world outside the config too:
    map files, imports; only those when ``known_good``), added to the schema's
    ``issues``; the config if none."""
    if locate is None:
        assert config is not None
        locate = config.issue_at
    checked = checks.outside(config, source.parent) if known_good and config is not None \
        else checks.check(data, config, source.parent)
    issues += fresh([(loc, locate(loc, message)) for loc, message in checked.found])
    if config is not None and not issues and before_imports is not None:
        before_imports(config)
    import_issues = fresh([(loc, locate(loc, message)) for loc, message in checked.imports()
                           ]) if check_functions else []
    if issues or config is None:
        raise _error(issues + import_issues)
    if import_issues:
        raise _error(import_issues, JobImportError)
    return config


def _issues(found: list[tuple[Loc, ConfigIssue]]) -> list[ConfigIssue]:
    return [issue for _, issue in found]


def _read(source: Path, name: str) -> str:
    def fail(message: str) -> ConfigError:
        return ConfigError([ConfigIssue(name, None, None, "", message)])

    try:
        raw = read_regular(source, limit=MAX_CONFIG_BYTES)
    except FileRefused as exc:
        if exc.directory:
            raise fail("is a directory, not a config file") from None
        if exc.size is not None:
            raise fail(f"the file is {exc.size / 1e6:,.1f} MB, over the "
                       f"{MAX_CONFIG_BYTES // 10**6} MB a config may hold (it was not read); "
                       "a long map list belongs in a file of its own "
                       "(map: {file: items.jsonl})") from None
        raise fail(str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([ConfigIssue(name, line, None, "",
                                       f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                                       f"{exc.start}); save the file as UTF-8")]) from None
    if not text.strip():
        raise fail("the file is empty; a config needs at least a 'jobs' mapping")
    return text


def _error(issues: list[ConfigIssue], kind: type[ConfigError] = ConfigError) -> ConfigError:
    """One ConfigError for ``issues`` in the file's order, without repeats, secret values
    masked in messages."""
    ordered = sorted(_unique(issues), key=lambda i: (i.line is None, i.line or 0, i.column or 0))
    return kind([replace(issue, message=redact.redact(issue.message)) for issue in ordered])


def _unique(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen: set[tuple[int | None, int | None, str]] = set()
    kept = []
    for issue in issues:
        key = (issue.line, issue.column, issue.message)
        if key not in seen:
            seen.add(key)
            kept.append(issue)
    return kept
