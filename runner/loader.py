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

import difflib
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from runner import checks, configcache, redact
from runner.config import (
    Config,
    FileSource,
    Job,
    JobDefaults,
    Loc,
    Origin,
    RangeSource,
    TaskSpec,
    dotted,
)
from runner.errors import ConfigError, ConfigIssue, JobImportError
from runner.files import MAX_CONFIG_BYTES, FileRefused, read_regular
from runner.primitives import SHARED_TYPES, ValueSpec

if TYPE_CHECKING:
    from runner.yamlsource import Document

__all__ = ["MAX_CONFIG_BYTES", "load_config"]


def load_config(path: str | os.PathLike[str], *, check_functions: bool = True,
                before_imports: Callable[[Config], None] | None = None) -> Config:
    """Read and validate the config at ``path``; raise ConfigError listing every problem.

    With ``check_functions`` (the default) each job's function is imported and
    checked to be callable, with the config's folder and the working directory
    on ``sys.path``. ``before_imports(config)`` is called when nothing but the
    imports is left to check, so that a run can start what needs only the
    config (the fork server) while the job modules import. A config validated
    before, unchanged, comes from ``runner.configcache``; what it names outside
    itself (map files, functions) is checked again all the same.
    """
    source = Path(path)
    name = str(path)
    text = _read(source, name)
    cache_key = configcache.key(name, text)
    cached = configcache.lookup(cache_key)
    if cached is not None:
        return _checked(cached.config, cached.data, source, [], _issues,
                        check_functions=check_functions, before_imports=before_imports)
    from runner.yamlsource import parse

    doc = parse(text)
    # Registered before anything is checked, so that no message below shows one either
    # (``workers: ${API_TOKEN}`` is reported as ``got '***'``).
    redact.add_secret_values(doc.secrets)
    issues = [ConfigIssue(name, p.line, p.column, dotted(p.path), p.message)
              for p in doc.problems]
    if not isinstance(doc.data, dict):
        if doc.data is None and not issues:  # "---" or "~" alone
            issues.append(ConfigIssue(name, 1, 1, "", "the document is empty; a config is a "
                                      "mapping with a 'jobs' key"))
        elif doc.data is not None:
            issues.append(ConfigIssue(name, 1, 1, "", "a config is a mapping with a 'jobs' key; "
                                      f"got {_show(doc.data)}"))
        raise _error(issues)
    config = _validated(doc, _Locator(name, doc, _merge_defaults(doc)), source, issues,
                        check_functions=check_functions, before_imports=before_imports)
    if not doc.secrets:  # a secret's value is never written to the cache
        configcache.store(cache_key, config, doc.data, doc.environ_read)
    return config


def _validated(doc: Document, locate: _Locator, source: Path, issues: list[ConfigIssue], *,
               check_functions: bool,
               before_imports: Callable[[Config], None] | None) -> Config:
    """The schema, then the checks beyond it (``runner.checks``), every issue collected."""
    # Values the YAML pass already refused are not reported twice.
    refused = [p.path for p in doc.problems if p.value_refused]

    def fresh(found: list[tuple[Loc, ConfigIssue]]) -> list[ConfigIssue]:
        return [issue for loc, issue in found
                if not any(loc[: len(path)] == path for path in refused)]

    config = None
    try:
        config = Config.model_validate(doc.data, context={"origin": Origin(
            str(source), locate.positions.at, tuple(sorted(doc.secrets)))})
    except ValidationError as exc:
        issues += fresh(locate.validation(exc))
    return _checked(config, doc.data, source, issues, fresh, locate=locate.at,
                    check_functions=check_functions, before_imports=before_imports)


def _checked(config: Config | None, data: Any, source: Path, issues: list[ConfigIssue],
             fresh: Callable[[list[tuple[Loc, ConfigIssue]]], list[ConfigIssue]], *,
             locate: Callable[[Loc, str], ConfigIssue] | None = None, check_functions: bool,
             before_imports: Callable[[Config], None] | None) -> Config:
    """``runner.checks``' checks beyond the schema (of the world outside the config too:
    map files, imports), added to the schema's ``issues``; the config if none."""
    if locate is None:
        assert config is not None
        locate = config.issue_at
    checked = checks.check(data, config, source.parent)
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


def _merge_defaults(doc: Document) -> dict[Loc, Loc]:
    """Copy ``defaults`` keys into each job that lacks them; return where each copy came from."""
    data = doc.data
    defaults, jobs = data.get("defaults"), data.get("jobs")
    origin: dict[Loc, Loc] = {}
    if not isinstance(defaults, dict) or not isinstance(jobs, dict):
        return origin
    for job_name, job in jobs.items():
        if not isinstance(job, dict):
            continue
        for key, value in defaults.items():
            if key in job:
                continue
            job[key] = value
            origin[("jobs", job_name, key)] = ("defaults", key)
    return origin


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


class _Positions:
    """Turns a data path into a ConfigIssue at its line and column in the file. Plain data,
    no YAML: a config from ``runner.configcache`` keeps one (``Config.issue_at``)."""

    def __init__(self, file: str, values: dict[Loc, tuple[int, int]],
                 keys: dict[Loc, tuple[int, int]], origin: dict[Loc, Loc]) -> None:
        self.file, self.values, self.keys, self.origin = file, values, keys, origin

    def at(self, loc: Loc, message: str, *, key: bool = False) -> ConfigIssue:
        label = dotted(loc)
        source = loc
        for depth in range(len(loc), 2, -1):
            if loc[:depth] in self.origin:  # written under defaults, copied into this job
                source = self.origin[loc[:depth]] + loc[depth:]
                label = f"{dotted(source)} (in job {loc[1]})"
                break
        position = None
        if key:
            position = self.keys.get(source)
        for depth in range(len(source), -1, -1):
            if position is not None:
                break
            position = self.values.get(source[:depth])
        line, column = position or (None, None)
        return ConfigIssue(self.file, line, column, label, message)


class _Locator:
    """Turns pydantic locations into file positions and readable messages."""

    def __init__(self, file: str, doc: Document, origin: dict[Loc, Loc]) -> None:
        self.doc = doc
        self.positions = _Positions(file, doc.values, doc.keys, origin)
        self.at = self.positions.at

    def validation(self, exc: ValidationError) -> list[tuple[Loc, ConfigIssue]]:
        grouped: dict[Loc, list[dict[str, Any]]] = {}
        for error in exc.errors():
            keyed = error["type"] in ("missing", "extra_forbidden")
            grouped.setdefault(self._path(error["loc"], keyed), []).append(dict(error))
        issues = []
        for loc, errors in grouped.items():
            missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing"]
            if any(e["type"] == "extra_forbidden" for e in errors):
                issue = self.at(loc, self._unknown_key(loc), key=True)
            elif loc and missing == [loc[-1]]:  # the path names the key already
                issue = self.at(loc, "required key is missing")
            elif missing:
                names = ", ".join(repr(key) for key in dict.fromkeys(missing))
                issue = self.at(loc, f"required key {names} is missing" if len(missing) == 1
                                else f"required keys {names} are missing")
            else:
                issue = self.at(loc, "; or ".join(dict.fromkeys(_message(e) for e in errors)))
            issues.append((loc, issue))
        return issues

    def _path(self, loc: tuple[int | str, ...], keyed: bool) -> Loc:
        """The data path behind a pydantic loc, without union branch names."""
        node: Any = self.doc.data
        path: list[str | int] = []
        for index, part in enumerate(loc):
            last = index == len(loc) - 1
            if _has(node, part):
                node = node[part]
                path.append(part)
            elif last and keyed and isinstance(node, dict):
                path.append(part)  # a missing or unknown key
            elif not isinstance(node, dict | list):
                break
        return tuple(path)

    def _unknown_key(self, loc: Loc) -> str:
        key = str(loc[-1])
        allowed = sorted(self._model_at(loc[:-1]).model_fields) if loc else []
        hint = ""
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        return f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})"

    def _model_at(self, loc: Loc) -> type[BaseModel]:
        """The model that validates the mapping at ``loc``."""
        if loc == ("defaults",):
            return JobDefaults
        # Below ``defaults`` a value has the shape it has in a job.
        shape = ("jobs", "", *loc[1:]) if loc[:1] == ("defaults",) else loc
        if not shape:
            return Config
        head = shape[0]
        if head == "jobs" and len(shape) == 2:
            return Job
        if head == "jobs" and len(shape) == 4 and shape[2] == "tasks":
            return TaskSpec
        if head == "jobs" and len(shape) == 3 and shape[2] == "map":
            node = self._node(loc)
            return RangeSource if isinstance(node, dict) and "range" in node else FileSource
        if head == "shared" and len(shape) == 2:
            spec = self._node(loc)
            kind = spec.get("type") if isinstance(spec, dict) else spec
            return SHARED_TYPES.get(str(kind), ValueSpec)
        return Config

    def _node(self, loc: Loc) -> Any:
        node: Any = self.doc.data
        for part in loc:
            if not _has(node, part):
                return None
            node = node[part]
        return node


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: dict[str, Any]) -> str:
    kind, message = error["type"], str(error["msg"])
    shown = _show(error.get("input"))
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        return f"{shown} is not one of " + expected.replace("'", "").replace(" or ", ", ")
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        expected = str(ctx.get("expected_tags", ""))
        return f"type {ctx.get('tag')!r} is not one of " + expected.replace("'", "")
    if kind == "union_tag_not_found":
        return "a 'type' key is required"
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":  # only "module:qualname" has a pattern
        return f'{shown} is not a "module:qualname" reference (e.g. jobs.tutorial:square)'
    return f"got {shown}: {message[:1].lower()}{message[1:]}"
