"""``mprun schema``: an editor with the schema accepts what mprun accepts.

Every key whose value may be a number, a boolean, an enum or a patterned
string also accepts a ``${VAR}`` / ``${VAR:-default}`` string (the loader
expands it first), so ``workers: ${W:-2}`` from the README is not flagged.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(60)


def alternatives(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The flat list of what a property accepts (anyOf nested in anyOf, unwrapped)."""
    if "anyOf" not in node:
        return [node]
    return [leaf for option in node["anyOf"] for leaf in alternatives(option)]


def accepts_var(node: dict[str, Any], text: str) -> bool:
    return any(option.get("type") == "string" and "pattern" in option
               and re.search(option["pattern"], text) for option in alternatives(node))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """What ``mprun schema`` prints, run once as a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "runner", "schema"], capture_output=True,
                          text=True, check=True, timeout=60, cwd=ROOT)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("key", ["workers", "timeout", "retries", "retry_delay", "repeat",
                                 "unpack", "chunksize", "mode", "on_error", "function"])
def test_a_job_key_accepts_a_var_string(schema: dict[str, Any], key: str) -> None:
    node = schema["$defs"]["Job"]["properties"][key]
    assert accepts_var(node, "${W:-2}") and accepts_var(node, "${W}"), node
    assert not accepts_var(node, "two")


def test_every_non_string_scalar_in_the_schema_accepts_a_var(schema: dict[str, Any]) -> None:
    """Walk every property of every model: no integer, number or boolean is left that a
    ${VAR} string would fail, except the discriminating ``type`` keys."""
    left: list[str] = []
    for model, definition in [("Config", schema), *schema["$defs"].items()]:
        for key, node in definition.get("properties", {}).items():
            kinds = {option.get("type") for option in alternatives(node)}
            if kinds & {"integer", "number", "boolean"} and not accepts_var(node, "${X:-1}"):
                left.append(f"{model}.{key}")
    assert left == []


def test_the_discriminator_stays_a_plain_constant(schema: dict[str, Any]) -> None:
    assert schema["$defs"]["ValueSpec"]["properties"]["type"] == {
        "const": "value", "title": "Type", "type": "string"}


def test_a_compare_jobs_start_line_summary_and_json_agree(run_cli, write_config) -> None:
    path = write_config("""
        jobs:
          both: {function: "tests.tasks:square", map: [1, 2], compare: [serial, pool],
                 workers: 2}
    """)
    result = run_cli(str(path), "--json")
    assert result.code == 0, result
    (job,) = result.json()["jobs"]
    assert (job["mode"], job["workers"]) == ("serial", 1)
    assert "mprun: both: 2 tasks in serial mode, 1 worker" in result.stderr
    human = run_cli(str(path))
    assert "both: serial, 1 worker, 2 tasks" in human.stdout
