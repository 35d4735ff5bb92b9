"""Validate a config's text afresh: parse, merge defaults, the schema, in one pass.

What ``runner.loader`` does on a miss of the config cache; the only room that
reads YAML into models and turns pydantic's errors into the config's messages
(``FILE:LINE:COL: jobs.add.workers: message``), so that a cached config's run
imports none of it. Nothing is raised here: every problem found is returned,
for the loader to add what ``runner.checks`` finds and raise them at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from runner import redact
from runner.config import Config, Loc, Origin, Positions, dotted
from runner.errors import ConfigIssue
from runner.models import Config as ConfigModel
from runner.models import FileSource, Job, JobDefaults, RangeSource, TaskSpec, freeze
from runner.sharedmodels import SHARED_MODELS, ValueSpec

if TYPE_CHECKING:
    from runner.yamlsource import Document

__all__ = ["Validated", "validate"]


@dataclass
class Validated:
    """A config's text, validated: the config if the schema held, and what was found."""

    config: Config | None
    data: Any  # the YAML's data, defaults merged, as runner.checks reads it
    issues: list[ConfigIssue]
    # Drops the issues at values the YAML pass refused already (not reported twice).
    fresh: Callable[[list[tuple[Loc, ConfigIssue]]], list[ConfigIssue]]
    locate: Callable[[Loc, str], ConfigIssue]
    doc: Document


def validate(text: str, name: str, source: str) -> Validated:
    """``text``, the config file ``name`` (read from ``source``), parsed and validated."""
    from runner.yamlsource import parse

    doc = parse(text)
    # Registered before anything is checked, so that no message below shows one either
    # (``workers: ${API_TOKEN}`` is reported as ``got '***'``).
    redact.add_secret_values(doc.secrets)
    issues = [ConfigIssue(name, p.line, p.column, dotted(p.path), p.message)
              for p in doc.problems]
    locate = _Locator(name, doc, _merge_defaults(doc) if isinstance(doc.data, dict) else {})
    # Values the YAML pass already refused are not reported twice.
    refused = [p.path for p in doc.problems if p.value_refused]

    def fresh(found: list[tuple[Loc, ConfigIssue]]) -> list[ConfigIssue]:
        return [issue for loc, issue in found
                if not any(loc[: len(path)] == path for path in refused)]

    config = None
    if not isinstance(doc.data, dict):
        if doc.data is None and not issues:  # "---" or "~" alone
            issues.append(ConfigIssue(name, 1, 1, "", "the document is empty; a config is a "
                                      "mapping with a 'jobs' key"))
        elif doc.data is not None:
            issues.append(ConfigIssue(name, 1, 1, "", "a config is a mapping with a 'jobs' key; "
                                      f"got {_show(doc.data)}"))
    else:
        try:
            config = freeze(ConfigModel.model_validate(doc.data, context={"origin": Origin(
                source, locate.positions.at, tuple(sorted(doc.secrets)))}))
        except ValidationError as exc:
            issues += fresh(locate.validation(exc))
    return Validated(config, doc.data, issues, fresh, locate.at, doc)


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


class _Locator:
    """Turns pydantic locations into file positions and readable messages."""

    def __init__(self, file: str, doc: Document, origin: dict[Loc, Loc]) -> None:
        self.doc = doc
        self.positions = Positions(file, doc.values, doc.keys, origin)
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
            return ConfigModel
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
            return SHARED_MODELS.get(str(kind), ValueSpec)
        return ConfigModel

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
