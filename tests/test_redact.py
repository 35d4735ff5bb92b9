"""Secrets never reach logs or summaries, tasks get them: values under a secret-looking
key, and the values of secret-named ${VAR}s wherever they end up."""

from __future__ import annotations

import hashlib
import json

import pytest

from runner import log
from runner.errors import ConfigError
from runner.loader import load_config
from runner.redact import (
    MASK,
    MIN_SECRET_LENGTH,
    add_secret_values,
    clear_secret_values,
    is_secret,
    redact,
    secret_values,
)
from runner.report import JobReport, RunReport, render
from runner.work import TaskError
from runner.yamlsource import parse


@pytest.fixture(autouse=True)
def _own_registry():
    """Each test starts with no secret value registered and leaves none behind."""
    before = secret_values()
    clear_secret_values()
    yield
    clear_secret_values()
    add_secret_values(before)

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
    with log.configured(path=str(path), run_id="r", process="runner"):
        log.logger(token=SECRET).info("connecting", password=SECRET,
                                       options={"dsn": "db", "api_key": SECRET})
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


def test_an_unregistered_value_under_an_ordinary_key_is_left_alone():
    """Without the value registered (it did not come from a secret-named ${VAR}), text
    under an ordinary key is not searched."""
    assert redact({"dsn": f"postgres://u:{SECRET}@db"}) == {"dsn": f"postgres://u:{SECRET}@db"}


# -- secret values: from secret-named ${VAR}s, masked wherever they appear ----------


def test_registry_keeps_values_longest_first_once_and_ignores_short_ones():
    add_secret_values(["abcd", "abcdefgh", "abcd", "xyz", ""])
    add_secret_values(["abcdef"])
    assert MIN_SECRET_LENGTH == 4
    assert secret_values() == ("abcdefgh", "abcdef", "abcd")
    clear_secret_values()
    assert secret_values() == ()


def test_registered_values_are_masked_inside_strings_at_any_depth_under_any_key():
    """Substrings too; dict keys are not touched; the input is not changed; unchanged
    parts are not copied."""
    add_secret_values([SECRET])
    value = {"dsn": f"pg://u:{SECRET}@h", "list": [SECRET, ("x", f"{SECRET}{SECRET}")],
             SECRET: "a key stays", "plain": ["ok", 1]}
    before = json.dumps(value)
    out = redact(value)
    assert out == {"dsn": "pg://u:***@h", "list": [MASK, ("x", MASK)],
                   SECRET: "a key stays", "plain": ["ok", 1]}
    assert json.dumps(value) == before
    assert out["plain"] is value["plain"]
    text = "nothing to hide"
    assert redact(text) is text


def test_overlapping_secrets_are_masked_as_one_whatever_their_order():
    """No tail of a longer secret survives next to the mask of a shorter one."""
    add_secret_values(["abcd1234", "1234wxyz"])
    assert redact("<abcd1234wxyz>") == "<***>"
    assert redact("abcd1234 and 1234wxyz") == "*** and ***"
    add_secret_values(["cd12"])
    assert redact("xabcd1234y") == "x***y"


def test_a_secret_read_as_a_number_is_masked_as_a_number_but_bool_is_not():
    """`pin: ${PIN_SECRET}` is an int in the config; a bool is never masked as one (a flag
    like USE_TOKEN=True would otherwise hide every true in the logs)."""
    add_secret_values(["48151623", "True"])
    assert redact({"pin": 48151623, "n": 7, "flag": True, "text": "pin 48151623"}) == {
        "pin": MASK, "n": 7, "flag": True, "text": f"pin {MASK}"}


def test_log_lines_mask_registered_values_in_message_fields_and_traceback(tmp_path):
    """The event text, any field at any depth and a formatted exception are all searched."""
    add_secret_values([SECRET])
    path = tmp_path / "log.jsonl"
    with log.configured(path=str(path), run_id="r", process="runner"):
        logger = log.logger()
        logger.info(f"connecting to pg://u:{SECRET}@h", dsn=f"pg://u:{SECRET}@h",
                    opts={"args": [SECRET]})
        try:
            raise ValueError(f"bad {SECRET}")
        except ValueError:
            logger.exception("failed")
    text = path.read_text()
    assert SECRET not in text
    first, second = log.read_jsonl(path)
    assert first["event"] == "connecting to pg://u:***@h"
    assert (first["dsn"], first["opts"]) == ("pg://u:***@h", {"args": [MASK]})
    assert "ValueError: bad ***" in second["exception"]


def test_yaml_records_what_secret_named_variables_expand_to():
    """From the environment or the default, whole or embedded; not ordinary variables,
    not empty values, not an escaped $${...}."""
    doc = parse("""
a: ${API_TOKEN}
b: "pg://u:${DB_PASSWORD:-fallback-pw}@h"
c: ${USER_NAME}
d: "${EMPTY_SECRET:-}"
e: "$${OTHER_TOKEN}"
f: ${PIN_SECRET}
""", environ={"API_TOKEN": "tok-value", "USER_NAME": "ann", "PIN_SECRET": "48151623"})
    assert not doc.problems
    assert doc.data["b"] == "pg://u:fallback-pw@h"
    assert doc.data["f"] == 48151623
    assert doc.secrets == {"tok-value", "fallback-pw", "48151623"}


def test_load_config_registers_secret_values_and_keeps_real_ones_for_tasks(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", SECRET)
    path = tmp_path / "c.yaml"
    path.write_text('jobs:\n  j:\n    function: tests.tasks:echo\n'
                    '    kwargs: {dsn: "pg://u:${MY_API_TOKEN}@h"}\n')
    config = load_config(path, check_functions=False)
    assert config.jobs["j"].kwargs == {"dsn": f"pg://u:{SECRET}@h"}
    assert config.secret_values == [SECRET]
    assert secret_values() == (SECRET,)


def test_config_errors_mask_secret_values(tmp_path, monkeypatch):
    """A bad value that came from a secret variable is reported without showing it."""
    monkeypatch.setenv("MY_API_TOKEN", "not-a-number-123")
    path = tmp_path / "c.yaml"
    path.write_text("jobs:\n  j:\n    function: tests.tasks:echo\n"
                    "    workers: ${MY_API_TOKEN}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_functions=False)
    text = str(info.value)
    assert "not-a-number-123" not in text
    assert "jobs.j.workers" in text and "'***'" in text


def test_summary_masks_secret_values_in_error_messages_not_in_results():
    """Error messages are masked in --json/summary.json and the human summary; results
    are the tasks' data and are shown as returned."""
    add_secret_values([SECRET])
    job = JobReport(name="j", mode="pool", workers=1, status="failed", tasks=2, ok=1, failed=1,
                    seconds=0.1, results=[f"got {SECRET}", None],
                    errors=[TaskError(task=1, type="ValueError", message=f"bad pg://{SECRET}@h")])
    report = RunReport(run_id="r", config="c.yaml", status="failed", exit_code=1, seconds=0.1,
                       log_dir=None, jobs=[job], shared={})
    doc = report.as_dict()
    assert doc["jobs"][0]["errors"][0]["message"] == "bad pg://***@h"
    assert doc["jobs"][0]["results"] == [f"got {SECRET}", None]
    assert "task 1 failed: ValueError: bad pg://***@h" in render(report)
    assert job.errors[0].message == f"bad pg://{SECRET}@h", "the library's report is unchanged"


TOKEN = "tok-9f8e7d6c5b4a-Xy"

VAR_CONFIG = """\
    jobs:
      pool:
        function: tests.tasks:connect
        mode: pool
        workers: 2
        tasks:
          - kwargs: {dsn: "pg://u:${MY_API_TOKEN}@db", auth: "${MY_API_TOKEN}"}
          - kwargs: {dsn: "pg://u:${MY_API_TOKEN}@db", auth: "${MY_API_TOKEN}", fail: true}
      serial:
        function: tests.tasks:connect
        mode: serial
        kwargs: {dsn: "pg://u:${MY_API_TOKEN}@db", auth: "${MY_API_TOKEN}", fail: true}
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("output", ["human", "json"])
def test_a_secret_variable_under_ordinary_keys_never_reaches_logs_summary_or_output(
        run_cli, write_config, tmp_path, start_method, output):
    """${MY_API_TOKEN}, whole (`auth`) and inside a string (`dsn`), in pool workers under
    every start method and in the runner (serial): log messages, fields, failure
    tracebacks, summary.json, stdout and stderr show *** in its place, and the task
    received the real value (its result is the sha256 of the real strings)."""
    path = write_config(VAR_CONFIG)
    args = [str(path), "--start-method", start_method]
    result = run_cli(*args, *(["--json"] if output == "json" else []),
                     env={"MY_API_TOKEN": TOKEN})
    assert result.code == 1, result
    run_dir = (tmp_path / "logs" / "latest").resolve()
    logs = sorted(run_dir.glob("*.jsonl"))
    workers = [p for p in logs if p.name.startswith("worker-")]
    assert workers and (run_dir / "runner.jsonl") in logs
    for file in [*workers, run_dir / "runner.jsonl", run_dir / "summary.json",
                 run_dir / "results.jsonl"]:
        assert TOKEN not in file.read_text(), file.name
    assert TOKEN not in result.stdout
    assert TOKEN not in result.stderr

    dsn = "pg://u:***@db"
    lines = [line for file in [*workers, run_dir / "runner.jsonl"]
             for line in log.read_jsonl(file)]
    connecting = [line for line in lines if line["event"] == f"connecting to {dsn}"]
    assert sorted((line["job"], line["task"], line["dsn"], line["auth"])
                  for line in connecting) == [("pool", 0, dsn, MASK), ("pool", 1, dsn, MASK),
                                              ("serial", 0, dsn, MASK)]
    failed = [line for line in lines if line["event"] == "task failed"]
    assert sorted(line["job"] for line in failed) == ["pool", "serial"]
    for line in failed:
        assert f"ValueError: cannot connect to {dsn} with ***" in line["exception"]

    summary = json.loads((run_dir / "summary.json").read_text())
    real = hashlib.sha256(f"pg://u:{TOKEN}@db|{TOKEN}".encode()).hexdigest()
    assert summary["jobs"][0]["results"] == [real, None]
    message = f"cannot connect to {dsn} with ***"
    assert [[e["message"] for e in job["errors"]] for job in summary["jobs"]] == \
        [[message], [message]]
    if output == "json":
        assert result.json() == summary
    else:
        assert f"task 1 failed: ValueError: {message}" in result.stdout
        assert f"task 0 failed: ValueError: {message}" in result.stdout


@pytest.mark.timeout(60)
def test_validate_does_not_show_a_secret_variable_in_its_error(run_cli, write_config):
    path = write_config("""\
        jobs:
          j:
            function: tests.tasks:echo
            workers: "${MY_API_TOKEN}"
        """)
    result = run_cli("validate", str(path), env={"MY_API_TOKEN": TOKEN})
    assert result.code == 2, result
    assert "jobs.j.workers" in result.stderr
    assert TOKEN not in result.stderr
