"""``--resume RUN_ID``: run again only the tasks an earlier run did not finish.

Data flow::

    run R (any run) ── writes R/tasks.json before its first job: each job's
                       function, args, kwargs and items (a range as its bounds, a
                       map file as its sha256 and item count)
    mprun --resume R ── tasks.json + R/results.jsonl ──> which tasks of R succeeded
                     ── the config's jobs now ──> match task by task ──> Plan.reused

A task is known by its job's name and its arguments: the function, the job's
``args``/``kwargs`` and its own item, as canonical JSON (keys sorted). When a
job's tasks are the same, in the same order (one digest of the whole job says
so), task *i* is task *i*. When their order changed, each task takes the
earlier result of an identical task, one result per task, so that reordering
reruns nothing and identical calls (``repeat``) stay separate. When tasks were
added, removed or changed, the resume is refused unless ``force``: then only
the tasks with an identical earlier success are skipped.

A map file's items are not in ``tasks.json`` (a million lines would be read into
memory to write them, and again to match them): its tasks are known by the file's
content and their place in it. The same sha256, count, function and arguments mean
task *i* is task *i*; a file that changed matches nothing (with ``force``, all its
tasks run again), since which line became which cannot be told without the old
items. A manifest of format 1 (items listed, map files too) is still matched item by
item, the map file's items streamed from the file.

``tasks.json`` masks secrets as the logs do (``runner.redact``), so two tasks
that differ only in a secret are the same task to a resume.

Reused results are what ``results.jsonl`` holds: JSON (a tuple is a list). A
journal line holding a value JSON cannot (written as its ``repr``) is marked
``lossy`` and its tasks run again.
The new run writes them into its own journal, so it can be resumed in turn.
Jobs that compare modes are always run again: their point is the timing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import redact
from runner.config import Config
from runner.errors import ResumeRefused
from runner.jsonable import dumps_compact
from runner.mapfile import MapFile
from runner.plan import Plan

__all__ = ["MANIFEST", "ResumeRefused", "Resumed", "latest_link", "match", "write_manifest"]

MANIFEST = "tasks.json"
# 2: a map file's job has "map_file" {sha256, items} in its entry and "file" (its path)
# beside it, instead of "items". Format 1 manifests are still read.
FORMAT = 2
FORMATS_READ = (1, 2)


@dataclass
class Resumed:
    """What a resumed run takes over from the earlier one."""

    run_id: str
    reused: dict[str, dict[int, Any]] = field(default_factory=dict)  # job -> task -> value
    notes: list[str] = field(default_factory=list)  # what --force let through


def _body(plan: Plan, compare: bool) -> bytes:
    """A job's entry in ``tasks.json``, as JSON, with secrets masked as in the logs.

    Masking walks every item in Python, so it runs only when the JSON may hold a
    secret key or a registered secret value: a million plain items cost one orjson
    call and a few byte searches.
    """
    entry = _entry(plan, compare)
    body = dumps_compact(entry)
    if redact.may_name_a_secret(body) or any(
            dumps_compact(value)[1:-1] in body for value in redact.secret_values()):
        body = dumps_compact(redact.redact(entry))
    return body


def _entry(plan: Plan, compare: bool) -> dict[str, Any]:
    call = plan.call
    entry: dict[str, Any] = {"function": call.function, "kind": call.kind,
                             "args": call.args, "kwargs": call.kwargs, "unpack": call.unpack,
                             "compare": compare}
    if isinstance(plan.items, range):
        entry["range"] = [plan.items.start, plan.items.stop, plan.items.step]
    elif isinstance(plan.items, MapFile):
        entry["map_file"] = {"sha256": plan.items.sha256, "items": len(plan.items)}
    else:
        entry["items"] = plan.items
    return entry


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def write_manifest(path: Path, run_id: str, config: Config,
                   plans: dict[str, Plan]) -> None:
    """Write ``tasks.json``: what ``--resume`` needs to know this run's tasks by."""
    jobs = []
    for name, plan in plans.items():
        body = _body(plan, len(config.jobs[name].modes()) > 1)
        where = b',"file":' + dumps_compact(os.path.abspath(plan.items.path)) \
            if isinstance(plan.items, MapFile) else b""  # where it was: not what it is
        jobs.append(dumps_compact(name) + b':{"digest":"%s","tasks":%d,"entry":%s%s}' % (
            _digest(body).encode(), len(plan), body, where))
    head = dumps_compact({"format": FORMAT, "run_id": run_id,
                          "config": os.path.abspath(config.source) if config.source else None})
    path.write_bytes(head[:-1] + b',"jobs":{' + b",".join(jobs) + b"}}\n")


def match(log_dir: str | os.PathLike[str] | None, run_id: str, config: Config,
          plans: dict[str, Plan], *, force: bool = False) -> Resumed:
    """Which tasks of ``plans`` the run ``run_id`` already did; raise ResumeRefused if the
    tasks changed since (unless ``force``) or that run cannot be read."""
    run_dir = _run_dir(log_dir, run_id, config)
    manifest = _manifest(run_dir, run_id)
    resumed = Resumed(run_id=run_dir.name)
    changes: list[str] = []
    here = os.path.abspath(config.source) if config.source else None
    if manifest.get("config") != here:
        changes.append(f"run {run_dir.name} was of {manifest.get('config')}, not {here}")
    done = _successes(run_dir)
    old_jobs: dict[str, Any] = manifest.get("jobs", {})
    for name in old_jobs:
        if name not in config.jobs:
            changes.append(f"job {name!r} of run {run_dir.name} is not in the config")
    for name, plan in plans.items():
        old = old_jobs.get(name)
        if old is None or old["entry"].get("compare") or len(config.jobs[name].modes()) > 1:
            continue  # not in that run (it ran other --only jobs), or a compare job
        body = _body(plan, len(config.jobs[name].modes()) > 1)
        succeeded = done.get(name, {})
        if old["digest"] == _digest(body):
            resumed.reused[name] = succeeded
            continue
        reused, change = _match_tasks(old["entry"], json.loads(body), succeeded, plan)
        resumed.reused[name] = reused
        if change:
            changes.append(f"jobs.{name}: {change}")
    if changes and not force:
        raise ResumeRefused(
            f"--resume {run_dir.name}: the tasks changed since that run: "
            + "; ".join(changes) + ". Give --force to resume anyway (tasks with the same "
            "arguments as a task that succeeded then are not run again).")
    resumed.notes = changes
    return resumed


def _manifest(run_dir: Path, run_id: str) -> dict[str, Any]:
    """The run's ``tasks.json``; ResumeRefused if it is missing, damaged or of a format
    this mprun does not read."""
    path = run_dir / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ResumeRefused(f"--resume {run_id}: {run_dir} has no {MANIFEST} (it was made by "
                            "an mprun without --resume, or is not a run folder)") from None
    except ValueError as exc:
        raise ResumeRefused(f"--resume {run_id}: {path} is damaged: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS_READ:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ResumeRefused(f"--resume {run_id}: {path} is of format {found!r}; this mprun "
                            f"reads formats {', '.join(map(str, FORMATS_READ))} (was the run "
                            "made by another version of mprun?)")
    return manifest


def latest_link(config: Config) -> str:
    """The name of the link to the newest run of ``config`` in a log folder:
    ``latest-NAME``, NAME being the config's name with anything but letters, digits,
    ``.``, ``_`` and ``-`` as ``_``."""
    return "latest-" + re.sub(r"[^A-Za-z0-9._-]", "_", config.display_name())


def _run_dir(log_dir: str | os.PathLike[str] | None, run_id: str, config: Config) -> Path:
    if log_dir is None:
        raise ResumeRefused("--resume needs a log directory (the earlier run's results)")
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise ResumeRefused(f"--resume: {run_id!r} is not a run id (a folder name under "
                            f"{log_dir}, or 'latest')")
    if run_id == "latest":  # the newest run of this config, never another config's
        link = latest_link(config)
        path = Path(log_dir) / link
        if not path.is_dir():
            raise ResumeRefused(f"--resume latest: no earlier run of {config.display_name()!r} "
                                f"under {log_dir} (no {link} there)")
        return path.resolve()
    path = Path(log_dir) / run_id
    if not path.is_dir():
        raise ResumeRefused(f"--resume: no run {run_id!r} under {log_dir}")
    return path.resolve()


def _successes(run_dir: Path) -> dict[str, dict[int, Any]]:
    """job -> task -> value, for every task that succeeded in the run's journal."""
    from runner.log import read_jsonl

    path = run_dir / "results.jsonl"
    if not path.exists():
        return {}
    done: dict[str, dict[int, Any]] = defaultdict(dict)
    for line in read_jsonl(path):
        if line.get("status") != "ok" or "mode" in line or line.get("lossy"):
            continue
        job = done[line["job"]]
        if "values" in line:
            first = line["first"]
            job.update(zip(range(first, first + len(line["values"])), line["values"],
                           strict=True))
        else:
            job[line["task"]] = line.get("value")
    return done


def _keys(entry: dict[str, Any], items: Iterable[Any]) -> list[bytes]:
    """Each task's identity: canonical JSON of its function, shared arguments and item."""
    head = [entry["function"], entry["kind"], entry["args"], entry["kwargs"], entry["unpack"]]
    return [json.dumps([*head, item], sort_keys=True, separators=(",", ":")).encode()
            for item in items]


def _items(entry: dict[str, Any], plan: Plan | None = None) -> Iterable[Any]:
    """A job's items as ``tasks.json`` masks them: listed, a range, or (``plan`` being this
    run's) the map file's, streamed from it."""
    if "range" in entry:
        return range(*entry["range"])
    if "map_file" in entry and plan is not None:
        return map(redact.redact, plan.items)
    return entry["items"]  # type: ignore[no-any-return]


def _map_file_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why the tasks of a map file of that run cannot be matched (task i is task i only for
    the same file content, function and arguments)."""
    was, now = old["map_file"], new.get("map_file")
    if now is None:
        what = "its map is no longer a map file"
    elif now["sha256"] != was["sha256"]:
        what = (f"its map file changed (sha256 {was['sha256'][:12]}... of {was['items']} "
                f"items, now {now['sha256'][:12]}... of {now['items']})")
    else:
        what = "its function or arguments changed"
    return (f"{what}; a map file's tasks are known by the file's content and their line "
            f"in it, so none of its {was['items']} earlier tasks is matched")


def _match_tasks(old: dict[str, Any], new: dict[str, Any], succeeded: dict[int, Any],
                 plan: Plan | None = None) -> tuple[dict[int, Any], str]:
    """The earlier results new tasks can take, and what changed ('' if only the order)."""
    if "map_file" in old:  # that run kept no items to match by
        return {}, _map_file_change(old, new)
    old_keys, new_keys = _keys(old, _items(old)), _keys(new, _items(new, plan))
    available: dict[bytes, deque[int]] = defaultdict(deque)
    for index, key in enumerate(old_keys):
        if index in succeeded:
            available[key].append(index)
    reused = {}
    for index, key in enumerate(new_keys):
        if available[key]:
            reused[index] = succeeded[available[key].popleft()]
    remaining: dict[bytes, int] = defaultdict(int)
    for key in old_keys:
        remaining[key] += 1
    added = 0
    for key in new_keys:
        if remaining[key]:
            remaining[key] -= 1
        else:
            added += 1
    removed = sum(remaining.values())
    if not added and not removed:
        return reused, ""
    return reused, (f"{added} task{'s' * (added != 1)} new or changed, "
                    f"{removed} earlier task{'s' * (removed != 1)} gone")
