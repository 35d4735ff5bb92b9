"""Secrets: values under a secret-looking key never reach logs or summaries; tasks get them."""

from __future__ import annotations

import hashlib
import json

import pytest

from runner import log
from runner.redact import MASK, is_secret, redact
from runner.report import RunReport, render

SECRET = "hunter2-Sup3r-S3cret"
SHARED_SECRET = 731_337_042


@pytest.mark.parametrize(("key", "secret"), [
    ("password", True), ("DB_PASSWORD", True), ("apiToken", True), ("api_key", True),
    ("apiKey", True), ("X-Api-Key", True), ("client_secret", True), ("SECRET", True),
    ("token", True), ("refresh_token", True),
    ("max_tokens", True),  # a substring rule: documented, errs on the side of hiding
    ("user", False), ("keys", False), ("pass", False), ("api", False), ("task", False),
    (3, False), (None, False),
])
def test_secret_keys_are_matched_by_substring_case_and_separator_blind(key, secret):
    assert is_secret(key) is secret


def test_redact_masks_at_every_depth_without_touching_the_input():
    """Nested dicts, lists and tuples are walked; the original objects are left as they were."""
    value = {"user": "ann", "password": SECRET,
             "nested": [{"apiToken": SECRET, "n": 1}, ({"secret": SECRET},)],
             "plain": [1, 2, {"x": 3}]}
    before = json.dumps(value)
    out = redact(value)
    assert out == {"user": "ann", "password": MASK,
                   "nested": [{"apiToken": MASK, "n": 1}, ({"secret": MASK},)],
                   "plain": [1, 2, {"x": 3}]}
    assert json.dumps(value) == before
    assert out["plain"] is value["plain"], "unchanged parts are not copied"


def test_redact_returns_the_same_object_when_nothing_is_secret_and_survives_cycles():
    clean = {"a": [1, {"b": 2}]}
    assert redact(clean) is clean
    cycle: dict = {"password": SECRET}
    cycle["self"] = cycle
    out = redact(cycle)
    assert out["password"] == MASK


def test_log_processor_masks_secret_keys(tmp_path):
    """Every line written through runner.log has secret keys masked, top-level and nested."""
    path = tmp_path / "log.jsonl"
    try:
        log.configure(path=str(path), run_id="r", process="runner")
        log.logger(token=SECRET).info("connecting", password=SECRET,
                                       options={"dsn": "db", "api_key": SECRET})
    finally:
        log.configure(path=None, run_id="r", process="runner")
    text = path.read_text()
    assert SECRET not in text
    line = json.loads(text)
    assert (line["token"], line["password"], line["options"]) == (
        MASK, MASK, {"dsn": "db", "api_key": MASK})


def test_summary_masks_shared_primitives_with_secret_names():
    report = RunReport(run_id="r", config="c.yaml", status="ok", exit_code=0, seconds=0.1,
                       log_dir=None, jobs=[], shared={"api_token": 42, "counter": 7})
    assert report.as_dict()["shared"] == {"api_token": MASK, "counter": 7}
    text = render(report)
    assert "api_token = ***" in text
    assert "counter = 7" in text
    assert "42" not in text
    assert report.shared["api_token"] == 42, "the library's report keeps the real value"


CONFIG = """\
    shared:
      api_token: {type: value, typecode: i, init: SHARED_VALUE}
    jobs:
      serial:
        function: tests.tasks:login
        mode: serial
        kwargs: {user: ann, password: "${DB_PASSWORD}"}
      thread:
        function: tests.tasks:login
        mode: thread
        tasks: [{kwargs: {user: bob, password: "${DB_PASSWORD}"}}]
      process:
        function: tests.tasks:login
        mode: process
        args: [cy]
        kwargs: {password: "${DB_PASSWORD}"}
      pool:
        function: tests.tasks:login
        mode: pool
        workers: 2
        unpack: true
        map:
          - {user: dee, password: "${DB_PASSWORD}"}
          - {user: eve, password: "${DB_PASSWORD}"}
""".replace("SHARED_VALUE", str(SHARED_SECRET))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("output", ["human", "json"])
def test_a_password_kwarg_never_reaches_logs_summary_or_stdout(run_cli, write_config,
                                                               tmp_path, output):
    """A secret passed as `password` (from ${DB_PASSWORD}), in every mode, is logged by
    the task under secret keys: every file of the run and stdout show only ***, and the
    task still received the real value (its result is the secret's sha256)."""
    path = write_config(CONFIG)
    args = [str(path), "--json"] if output == "json" else [str(path)]
    result = run_cli(*args, env={"DB_PASSWORD": SECRET})
    assert result.code == 0, result
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    run_dir = (tmp_path / "logs" / "latest").resolve()
    files = sorted(run_dir.iterdir())
    assert {"runner.jsonl", "summary.json", "results.jsonl"} <= {p.name for p in files}
    assert any(p.name.startswith("worker-") for p in files)
    for file in files:
        text = file.read_text()
        assert SECRET not in text, file.name
        assert str(SHARED_SECRET) not in text, file.name
    assert SECRET not in result.stdout
    assert str(SHARED_SECRET) not in result.stdout
    assert SECRET not in result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [job["results"] for job in summary["jobs"]] == [[digest], [digest], [digest],
                                                           [digest, digest]]
    assert summary["shared"] == {"api_token": MASK}
    if output == "json":
        assert result.json() == summary
    else:
        assert "api_token = ***" in result.stdout
    logged = [line for file in files if file.name.endswith(".jsonl")
              and file.name != "results.jsonl"
              for line in log.read_jsonl(file) if line["event"] == "logging in"]
    assert sorted(line["user"] for line in logged) == ["ann", "bob", "cy", "dee", "eve"]
    for line in logged:
        assert line["password"] == MASK
        assert line["creds"] == {"apiToken": MASK, "user": line["user"]}
        assert line["attempts"] == [{"DB_PASSWORD": MASK}]


def test_redaction_is_by_key_only():
    """Documented limit: a secret inside a value under an ordinary key is not found."""
    assert redact({"dsn": f"postgres://u:{SECRET}@db"}) == {"dsn": f"postgres://u:{SECRET}@db"}
