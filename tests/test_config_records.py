"""The config's two layers: pydantic models validate (runner.models, runner.sharedmodels),
plain records are what a run reads (runner.config, runner.primitives). Their fields must
stay one list: a key added to a model and not to its record would be lost on freezing."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from runner import config as records
from runner import models, sharedmodels
from runner.loader import load_config

ROOT = Path(__file__).resolve().parent.parent
MODELS: list[type[Any]] = [models.Config, models.Job, models.JobDefaults, models.RangeSource,
                           models.FileSource, models.TaskSpec,
                           *dict.fromkeys(sharedmodels.SHARED_MODELS.values())]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_each_model_and_its_record_have_the_same_fields_and_defaults(model: type[Any]) -> None:
    record = model.record
    kept = {f.name: f for f in dataclasses.fields(record) if f.name != "origin"}
    assert set(kept) == set(model.model_fields)
    for name, info in model.model_fields.items():
        if info.is_required():
            continue
        made = kept[name].default_factory() if kept[name].default_factory is not \
            dataclasses.MISSING else kept[name].default
        assert made == info.get_default(call_default_factory=True), name


def _no_models(value: Any, where: str) -> None:
    assert not isinstance(value, BaseModel), f"{where} is still a model"
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            _no_models(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_models(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_models(item, f"{where}[{index}]")


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")),
                         ids=lambda path: path.name)
def test_every_shipped_config_loads_as_records_only(path: Path) -> None:
    config = load_config(path, check_functions=False)
    assert type(config) is records.Config
    _no_models(config, "config")
    again = pickle.loads(pickle.dumps(config))
    assert again == config


def test_a_record_is_frozen_and_a_python_built_config_is_validated() -> None:
    config = records.Config.validate({"jobs": {"a": {"function": "tests.tasks:square",
                                                     "map": {"range": 3}, "workers": 2}}})
    job = config.jobs["a"]
    assert isinstance(job.map, records.RangeSource) and list(job.map.as_range()) == [0, 1, 2]
    assert (job.worker_count(), job.modes()) == (2, ["pool"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.workers = 3  # type: ignore[misc]
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        records.Config.validate({"jobs": {"a": {"function": "tests.tasks:square",
                                                "workers": 0}}})


@pytest.mark.timeout(60)
def test_a_run_of_a_cached_config_never_imports_pydantic(tmp_path: Path) -> None:
    probe = ("import sys, runner\n"
             "runner.run(sys.argv[1], log_dir=sys.argv[2])\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('pydantic', 'pydantic_core', 'yaml') or m in ('runner.models', "
             "'runner.sharedmodels', 'runner.validation')))\n")
    env_cmd = [sys.executable, "-c", probe, str(ROOT / "configs" / "pool.yaml"),
               str(tmp_path / "logs")]
    env = {**os.environ, "MPRUN_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run(env_cmd, capture_output=True, text=True, cwd=ROOT, timeout=50,
                           check=True, env=env)
    assert "pydantic" in first.stdout, "the first load validates (a miss)"
    second = subprocess.run(env_cmd, capture_output=True, text=True, cwd=ROOT, timeout=50,
                            check=True, env=env)
    assert second.stdout.strip().splitlines()[-1] == "[]", second.stdout
