"""Dask mode on a cluster mprun did not start: a real ``dask scheduler`` and ``dask worker
--nworkers 2 --nthreads 1`` on 127.0.0.1, started once for this module.

The workers run in a folder of their own, so a job module beside a config is not on
their path: they can import it only when mprun uploads it (``dask.upload``). Every
module a test uses is a copy of ``tests/dask_remote_tasks.py`` under a new name, as the
workers live across tests and keep what was uploaded to them. Every runner these tests
start carries ``MARKER`` in its environment (as do its children), which is how the
last test finds any process mprun left behind. The cluster's own processes do not.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from runner.log import TornLineWarning, read_jsonl
from tests.conftest import ROOT, CLIResult
from tests.helpers import read_strict, wait_until

pytestmark = pytest.mark.timeout(120)

DASK = Path(sys.executable).parent / "dask"
TASKS = Path(__file__).with_name("dask_remote_tasks.py")
MARKER = "MPRUN_DASK_REMOTE_TEST"
TOKEN = uuid.uuid4().hex
HOST = socket.gethostname()
RunCLI = Callable[..., CLIResult]

# -- the cluster ---------------------------------------------------------------------


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: subprocess.Popen[bytes]
    worker_procs: dict[str, psutil.Process]  # worker address -> its process
    client: Any  # a distributed.Client of the test's own, to look at the cluster
    folder: Path  # the workers' cwd and local directory

    @property
    def worker_pids(self) -> set[int]:
        return {proc.pid for proc in self.worker_procs.values()}

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}:\n{path.read_text(errors='replace')[-4000:]}"
                         for path in sorted(self.folder.glob("*.log")))


def _cluster_env() -> dict[str, str]:
    """The cluster's environment: this one without anything that would put the repo or
    a config folder on its path, or point it at another scheduler."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "DASK_SCHEDULER_ADDRESS", MARKER)}


def _stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask-cluster")
    env = _cluster_env()
    scheduler_file = folder / "scheduler.json"
    no_dashboard = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
    with open(folder / "scheduler.log", "wb") as out:
        scheduler = subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", *no_dashboard,
             "--scheduler-file", str(scheduler_file)],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    workers: subprocess.Popen[bytes] | None = None
    client: Any = None
    procs: dict[str, psutil.Process] = {}
    try:
        def address() -> str | None:
            assert scheduler.poll() is None, "dask scheduler exited"
            with contextlib.suppress(OSError, ValueError):
                return str(json.loads(scheduler_file.read_text())["address"])
            return None

        addr = wait_until(address, timeout=60, what="the dask scheduler's address")
        with open(folder / "workers.log", "wb") as out:
            workers = subprocess.Popen(
                [str(DASK), "worker", addr, "--nworkers", "2", "--nthreads", "1",
                 "--host", "127.0.0.1", *no_dashboard, "--local-directory",
                 str(folder / "work")],
                cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        client = Client(addr, timeout=30, set_as_default=False)
        client.wait_for_workers(2, timeout=60)
        pids = client.run(os.getpid)
        procs = {worker: psutil.Process(pid) for worker, pid in pids.items()}
        assert len(procs) == 2, pids
        children = {child.pid for child in psutil.Process(workers.pid).children()}
        assert {p.pid for p in procs.values()} <= children, (procs, children)
        yield Cluster(addr, scheduler, workers, procs, client, folder)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if workers is not None:
            _stop(workers)
        _stop(scheduler)
        for proc in procs.values():  # a worker process its nanny did not end
            if _alive(proc):
                proc.kill()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """What every runner here gets in its environment: MARKER, and a temporary folder
    of the test's own (what mprun leaves there is not left in /tmp)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    return {MARKER: TOKEN, "TMPDIR": str(temp)}


@pytest.fixture(autouse=True)
def _no_scheduler_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DASK_SCHEDULER_ADDRESS of the developer's would change what every test means."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)


# -- helpers -------------------------------------------------------------------------


def task_module(folder: Path, prefix: str) -> str:
    """A copy of dask_remote_tasks.py in ``folder``, under a name no worker has seen."""
    name = f"remote_{prefix}_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(TASKS.read_text())
    return name


def task_package(folder: Path) -> tuple[str, Path]:
    """A package in ``folder``, under a name no worker has seen, with dask_remote_tasks.py
    as its submodule ``tasks``: (its name, that file)."""
    name = f"remote_pkg_{uuid.uuid4().hex[:8]}"
    (folder / name).mkdir()
    (folder / name / "__init__.py").write_text("")
    source = folder / name / "tasks.py"
    source.write_text(TASKS.read_text())
    return name, source


def config(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def map_job(module: str, function: str, items: list[int], *, job: str = "work",
            mode: str = "dask", extra: str = "", head: str = "") -> str:
    return (f"{head}jobs:\n  {job}:\n    function: {module}:{function}\n    mode: {mode}\n"
            f"    workers: 2\n    map: {json.dumps(items)}\n{extra}")


def run_folders(logs: Path) -> list[Path]:
    return sorted(p for p in logs.iterdir() if p.is_dir() and not p.is_symlink()
                  and not p.name.startswith(".")) if logs.exists() else []


def worker_logs(run_folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Each worker-HOST-PID.jsonl of a run folder (possibly still written): its lines."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornLineWarning)
        return {path.name: read_jsonl(path)
                for path in sorted(run_folder.glob("worker-*.jsonl"))}


def importable_on_workers(cluster: Cluster, module: str) -> list[str]:
    """The workers that can find ``module``."""
    answers = cluster.client.run(importlib.util.find_spec, module, on_error="return")
    return sorted(worker for worker, spec in answers.items() if spec is not None)


def ok_json(result: CLIResult) -> dict[str, Any]:
    assert result.code == 0, result
    assert "Traceback" not in result.stderr, result
    data: dict[str, Any] = result.json()
    return data


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_runner(path: Path, logs: Path, env: dict[str, str], *extra: str
                 ) -> subprocess.Popen[bytes]:
    """The CLI in the background, as run_cli runs it; its output in files beside ``logs``."""
    out = open(logs.parent / "runner.out", "wb")  # noqa: SIM115 (the child keeps it)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "runner", "run", str(path), "--log-dir", str(logs), *extra],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    finally:
        out.close()


def waiting_on_both(proc: subprocess.Popen[bytes], logs: Path) -> list[dict[str, Any]]:
    """The "waiting" lines of the run's two tasks, once both have logged one."""
    assert proc.poll() is None, (logs.parent / "runner.out").read_text()
    folders = run_folders(logs)
    if not folders:
        return []
    lines = [line for lines in worker_logs(folders[0]).values() for line in lines
             if line.get("event") == "waiting"]
    return lines if {line["x"] for line in lines} == {1, 2} else []


# -- a cluster of someone else's ------------------------------------------------------


def test_uploaded_module_runs_on_remote_workers(cluster, run_cli, tmp_path, env):
    """A module beside the config, which the workers cannot import, is uploaded: right
    results, the summary's "dask" entry, journal lines naming the remote workers, and
    the task's log lines in worker-HOST-PID.jsonl with a "host"."""
    module = task_module(tmp_path, "up")
    assert importable_on_workers(cluster, module) == []
    path = config(tmp_path, map_job(module, "scaled", [1, 2, 3, 4, 5, 6]))
    data = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                           env=env))
    assert data["dask"] == {"scheduler": cluster.address, "embedded": False,
                            "workers": 2, "threads": 2}
    (job,) = data["jobs"]
    assert (job["mode"], job["status"], job["results"]) == ("dask", "ok", [3, 6, 9, 12, 15, 18])
    run_folder = Path(data["log_dir"])
    lines = read_strict(run_folder / "results.jsonl")
    assert sorted(line["task"] for line in lines) == list(range(6))
    assert {line["status"] for line in lines} == {"ok"}
    for line in lines:
        assert line["worker"] in cluster.worker_procs, line
        assert line["pid"] == cluster.worker_procs[line["worker"]].pid, line
    files = worker_logs(run_folder)
    assert files, sorted(p.name for p in run_folder.iterdir())
    assert set(files) <= {f"worker-{HOST}-{pid}.jsonl" for pid in cluster.worker_pids}
    logged = []
    for name, entries in files.items():
        for entry in entries:
            assert entry["host"] == HOST, entry
            assert name == f"worker-{HOST}-{entry['pid']}.jsonl", (name, entry)
        logged += [entry["x"] for entry in entries if entry["event"] == "scaling"]
    assert sorted(logged) == [1, 2, 3, 4, 5, 6]
    assert importable_on_workers(cluster, module) == sorted(cluster.worker_procs)


def test_changed_module_is_reloaded_on_long_lived_workers(cluster, run_cli, tmp_path, env):
    """Edit the module between two runs: the second run's results are the new ones, from
    the same worker processes (which had the older copy imported)."""
    module = task_module(tmp_path, "edit")
    path = config(tmp_path, map_job(module, "scaled", [1, 2, 3, 4]))
    first = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                            env=env))
    assert first["jobs"][0]["results"] == [3, 6, 9, 12]
    source = tmp_path / f"{module}.py"
    text = source.read_text()
    assert "FACTOR = 3 " in text
    source.write_text(text.replace("FACTOR = 3 ", "FACTOR = 1000 ", 1))
    second = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                             env=env))
    assert second["jobs"][0]["results"] == [1000, 2000, 3000, 4000]
    pids = {line["pid"] for line in read_strict(Path(second["log_dir"]) / "results.jsonl")}
    assert pids <= cluster.worker_pids
    assert all(_alive(proc) for proc in cluster.worker_procs.values())


def test_package_is_uploaded_as_a_zip(cluster, run_cli, tmp_path, env):
    """A package beside the config (its function in a submodule) runs on the workers."""
    package, _source = task_package(tmp_path)
    assert importable_on_workers(cluster, package) == []
    path = config(tmp_path, map_job(f"{package}.tasks", "scaled", [1, 2, 3, 4]))
    data = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                           env=env))
    assert data["jobs"][0]["results"] == [3, 6, 9, 12]
    assert importable_on_workers(cluster, package) == sorted(cluster.worker_procs)


def test_changed_package_is_reloaded_on_long_lived_workers(cluster, run_cli, tmp_path, env):
    """As test_changed_module_is_reloaded_on_long_lived_workers, for a package: an edit
    to its submodule is what the next run runs."""
    package, source = task_package(tmp_path)
    path = config(tmp_path, map_job(f"{package}.tasks", "scaled", [1, 2, 3, 4]))
    first = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                            env=env))
    assert first["jobs"][0]["results"] == [3, 6, 9, 12]
    source.write_text(source.read_text().replace("FACTOR = 3 ", "FACTOR = 1000 ", 1))
    second = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                             env=env))
    assert second["jobs"][0]["results"] == [1000, 2000, 3000, 4000]


def test_package_upload_leaves_no_temporary_files(cluster, run_cli, tmp_path, env):
    """The zip a package travels as is the run's: nothing of it stays in the runner's
    temporary folder after the run."""
    package, _source = task_package(tmp_path)
    temp = Path(env["TMPDIR"])
    path = config(tmp_path, map_job(f"{package}.tasks", "scaled", [1, 2]))
    data = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                           env=env))
    assert data["jobs"][0]["results"] == [3, 6]
    assert sorted(p.name for p in temp.iterdir()) == []


def test_upload_false_is_exit_2_naming_worker_and_module(cluster, run_cli, tmp_path, env):
    """dask.upload: false and a module only beside the config: every worker fails the
    probe, named with the scheduler and the module; nothing runs."""
    module = task_module(tmp_path, "noup")
    assert importable_on_workers(cluster, module) == []
    path = config(tmp_path, map_job(module, "scaled", [1, 2], head="dask:\n  upload: false\n"))
    result = run_cli("run", str(path), "--dask-scheduler", cluster.address, env=env)
    assert result.code == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result
    for worker in cluster.worker_procs:
        assert any(worker in line and f"module {module}" in line and cluster.address in line
                   for line in result.stderr.splitlines()), (worker, result)
    assert run_folders(tmp_path / "logs") == []
    assert list((tmp_path / "logs").rglob("results.jsonl")) == []
    assert importable_on_workers(cluster, module) == []


def test_unreachable_and_malformed_addresses_are_exit_2(run_cli, tmp_path, env):
    """A closed port: exit 2 within a few seconds of connect_timeout, naming the
    address; a malformed address: exit 2 too. Nothing runs either time."""
    module = task_module(tmp_path, "unreach")
    path = config(tmp_path, map_job(module, "scaled", [1, 2],
                                    head="dask:\n  connect_timeout: 2\n"))
    address = f"tcp://127.0.0.1:{closed_port()}"
    began = time.monotonic()
    result = run_cli("run", str(path), "--dask-scheduler", address, env=env, timeout=60)
    took = time.monotonic() - began
    assert result.code == 2, result
    assert address in result.stderr, result
    assert "Traceback" not in result.stderr, result
    assert took < 15, f"exit 2 took {took:.1f}s with connect_timeout: 2"
    result = run_cli("run", str(path), "--dask-scheduler", "not-an-address", env=env,
                     timeout=60)
    assert result.code == 2, result
    assert "not-an-address" in result.stderr, result
    assert "Traceback" not in result.stderr, result
    assert run_folders(tmp_path / "logs") == []


def test_scheduler_precedence_flag_config_env(cluster, run_cli, tmp_path, env):
    """--dask-scheduler beats dask.scheduler, which beats $DASK_SCHEDULER_ADDRESS: a
    closed port in the losers does not matter."""
    module = task_module(tmp_path, "prec")
    bad = f"tcp://127.0.0.1:{closed_port()}"
    head = f"dask:\n  scheduler: {bad}\n  connect_timeout: 2\n"
    flag = config(tmp_path, map_job(module, "square", [1, 2], head=head), name="flag.yaml")
    data = ok_json(run_cli("run", str(flag), "--dask-scheduler", cluster.address, "--json",
                           env={**env, "DASK_SCHEDULER_ADDRESS": bad}))
    assert (data["dask"]["scheduler"], data["jobs"][0]["results"]) == (cluster.address, [1, 4])
    head = f"dask:\n  scheduler: {cluster.address}\n"
    conf = config(tmp_path, map_job(module, "square", [3], head=head), name="conf.yaml")
    data = ok_json(run_cli("run", str(conf), "--json",
                           env={**env, "DASK_SCHEDULER_ADDRESS": bad}))
    assert (data["dask"]["scheduler"], data["jobs"][0]["results"]) == (cluster.address, [9])
    env_only = config(tmp_path, map_job(module, "square", [4]), name="env.yaml")
    data = ok_json(run_cli("run", str(env_only), "--json",
                           env={**env, "DASK_SCHEDULER_ADDRESS": cluster.address}))
    assert data["dask"]["embedded"] is False
    assert (data["dask"]["scheduler"], data["jobs"][0]["results"]) == (cluster.address, [16])


def test_unchanged_pool_config_same_results_on_the_cluster(cluster, run_cli, tmp_path, env):
    """A mode: pool config, unchanged, under --dask-scheduler: the same results, in
    mode dask on the remote workers."""
    module = task_module(tmp_path, "pool")
    items = list(range(-3, 17))
    path = config(tmp_path, map_job(module, "square", items, job="squares", mode="pool"))
    local = ok_json(run_cli("run", str(path), "--json", env=env))
    remote = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                             env=env))
    assert local["jobs"][0]["mode"] == "pool"
    assert "dask" not in local
    assert remote["jobs"][0]["mode"] == "dask"
    assert remote["dask"]["embedded"] is False
    assert remote["jobs"][0]["results"] == local["jobs"][0]["results"] == [x * x for x in items]
    lines = read_strict(Path(remote["log_dir"]) / "results.jsonl")
    assert {line["worker"] for line in lines} <= set(cluster.worker_procs)


def test_sigkilled_runner_leaves_the_cluster_up_and_usable(cluster, run_cli, tmp_path, env):
    """SIGKILL a runner whose tasks run on the cluster: the scheduler and its workers
    stay up, the same processes, and a next run uses them."""
    module = task_module(tmp_path, "kill")
    gate = tmp_path / "gate"
    logs = tmp_path / "logs"
    path = config(tmp_path, map_job(module, "wait_for", [1, 2], job="hold",
                                    extra=f"    kwargs: {{gate: {json.dumps(str(gate))}}}\n"))
    proc = start_runner(path, logs, env, "--dask-scheduler", cluster.address)
    try:
        lines = wait_until(lambda: waiting_on_both(proc, logs), timeout=60,
                           what="both tasks logging 'waiting' on the cluster")
        assert {line["pid"] for line in lines} <= cluster.worker_pids
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        gate.touch()  # the tasks it left running end now
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert cluster.scheduler.poll() is None, cluster.logs()
    assert cluster.workers.poll() is None, cluster.logs()
    assert all(_alive(p) for p in cluster.worker_procs.values()), cluster.logs()
    workers = cluster.client.scheduler_info(n_workers=-1)["workers"]
    assert set(workers) == set(cluster.worker_procs)
    after = config(tmp_path, map_job(module, "scaled", [1, 2, 3, 4]), name="after.yaml")
    data = ok_json(run_cli("run", str(after), "--dask-scheduler", cluster.address, "--json",
                           env=env))
    assert data["jobs"][0]["results"] == [3, 6, 9, 12]
    assert data["dask"]["workers"] == 2


def test_cluster_still_up_and_nothing_of_mprun_left(cluster):
    """After every run above: the scheduler and the same two worker processes are up (mprun
    never stops, nor restarts, a cluster it did not start) and no process an mprun run
    started is left."""
    assert cluster.scheduler.poll() is None, cluster.logs()
    assert cluster.workers.poll() is None, cluster.logs()
    assert all(_alive(p) for p in cluster.worker_procs.values()), cluster.logs()
    assert set(cluster.client.scheduler_info(n_workers=-1)["workers"]) == \
        set(cluster.worker_procs)
    assert cluster.client.run(os.getpid) == {w: p.pid for w, p in cluster.worker_procs.items()}
    assert wait_until(lambda: not mprun_processes(), timeout=15,
                      what="every process of an mprun run gone") is True


def mprun_processes() -> list[str]:
    """The live processes that carry this module's MARKER: a runner or its children."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(MARKER) == TOKEN:
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
    return found


# -- an embedded cluster -------------------------------------------------------------


def test_sigkilled_runner_with_embedded_cluster_leaves_no_process(tmp_path, env):
    """mode dask with no scheduler: mprun's LocalCluster. SIGKILL the runner while its
    tasks run: its worker processes (its children) all end."""
    module = task_module(tmp_path, "embedded")
    gate = tmp_path / "gate"
    logs = tmp_path / "logs"
    path = config(tmp_path, map_job(module, "wait_for", [1, 2], job="hold",
                                    extra=f"    kwargs: {{gate: {json.dumps(str(gate))}}}\n"))
    proc = start_runner(path, logs, env)
    children: list[psutil.Process] = []
    try:
        lines = wait_until(lambda: waiting_on_both(proc, logs), timeout=90,
                           what="both tasks logging 'waiting' on the embedded cluster")
        children = psutil.Process(proc.pid).children(recursive=True)
        worker_pids = {line["pid"] for line in lines}
        assert len(worker_pids) == 2, lines
        assert worker_pids <= {child.pid for child in children}, (lines, children)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        wait_until(lambda: not [c for c in children if _alive(c)], timeout=30,
                   what="every process of the SIGKILLed runner gone")
    finally:
        gate.touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for child in children:  # what it left (the test failed): not left for later tests
            with contextlib.suppress(psutil.Error):
                if _alive(child):
                    child.kill()


def test_a_worker_of_another_mprun_version_is_exit_2_and_nothing_runs(
        cluster: Cluster, run_cli: RunCLI, tmp_path: Path, env: dict[str, str]) -> None:
    """A third worker whose mprun says another version joins: the run is refused with
    exit 2 naming that worker and both versions, and no run folder is made."""
    preload = Path(__file__).with_name("dask_old_version.py")
    with open(tmp_path / "old-worker.log", "wb") as out:
        old = subprocess.Popen(
            [str(DASK), "worker", cluster.address, "--nworkers", "1", "--nthreads", "1",
             "--host", "127.0.0.1", "--no-dashboard", "--preload", str(preload),
             "--local-directory", str(tmp_path / "old-work")],
            cwd=tmp_path, env=_cluster_env(), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    try:
        cluster.client.wait_for_workers(3, timeout=60)
        odd = [w for w in cluster.client.scheduler_info(n_workers=-1)["workers"]
               if w not in cluster.worker_procs]
        assert len(odd) == 1, odd
        module = task_module(tmp_path, "oldver")
        path = config(tmp_path, map_job(module, "scaled", [1, 2]))
        result = run_cli("run", str(path), "--dask-scheduler", cluster.address, env=env)
        assert result.code == 2, result
        assert f"worker {odd[0]} has mprun 0.0.1-old, the runner 0.1.0" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
        assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").glob("2*"))
    finally:
        _stop(old)
        wait_until(lambda: len(cluster.client.scheduler_info(n_workers=-1)["workers"]) == 2,
                   timeout=60, what="the old worker to leave")


def test_a_scheduler_that_dies_mid_run_fails_the_tasks_it_held_and_the_run_ends(
        run_cli: RunCLI, tmp_path: Path, env: dict[str, str]) -> None:
    """A cluster of its own whose scheduler is SIGKILLed while tasks run: those tasks and
    the later job's fail as ClusterLost naming the scheduler, exit 1, no hang (the
    results are not "ok" with tasks silently not run)."""
    folder = tmp_path / "own-cluster"
    folder.mkdir()
    scheduler_file = folder / "scheduler.json"
    cluster_env = _cluster_env()
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)], cwd=folder, env=cluster_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    workers: subprocess.Popen[bytes] | None = None
    runner_proc: subprocess.Popen[str] | None = None
    try:
        def address() -> str | None:
            with contextlib.suppress(OSError, ValueError):
                return str(json.loads(scheduler_file.read_text())["address"])
            return None

        addr = wait_until(address, timeout=60, what="the scheduler's address")
        workers = subprocess.Popen(
            [str(DASK), "worker", addr, "--nworkers", "2", "--nthreads", "1", "--host",
             "127.0.0.1", "--no-dashboard", "--local-directory", str(folder / "work")],
            cwd=folder, env=cluster_env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        module = task_module(tmp_path, "lost")
        gate = tmp_path / "never"
        shared = ("shared:\n  value: {type: value, typecode: i}\n  arr: {type: array, "
                  "typecode: i, size: 1}\n  lock: lock\n  sem: semaphore\n  event: event\n"
                  "  q: queue\n")
        path = config(tmp_path, shared + map_job(
            module, "wait_for", [1, 2, 3, 4],
            extra=f"    chunksize: 1\n    kwargs: {{gate: {gate}, cap: 60}}\n")
            + f"  later:\n    function: {module}:touch_all\n    mode: dask\n"
              "    map: [1]\n    args: [!ref value, !ref arr, !ref lock, !ref sem, !ref event, "
              "!ref q]\n")
        logs = tmp_path / "logs"
        runner_proc = subprocess.Popen(
            [sys.executable, "-m", "runner", str(path), "--json", "--log-dir", str(logs),
             "--dask-scheduler", addr], cwd=ROOT, env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL)
        def started() -> bool:
            assert runner_proc is not None and runner_proc.poll() is None, \
                runner_proc.communicate() if runner_proc else None
            return any("waiting" in file.read_text() for file in logs.glob("*/worker-*.jsonl"))

        wait_until(started, timeout=90, what="a task to start on the cluster")
        scheduler.kill()
        out, err = runner_proc.communicate(timeout=100)
        assert runner_proc.returncode == 1, err
        jobs = {j["name"]: j for j in json.loads(out)["jobs"]}
        for name in ("work", "later"):
            assert jobs[name]["status"] == "failed"
            assert jobs[name]["not_run"] == 0
            assert {e["type"] for e in jobs[name]["errors"]} == {"ClusterLost"}
            assert all(addr in e["message"] for e in jobs[name]["errors"])
        assert "Traceback" not in err
        # The primitives lived in the scheduler that died: the summary says so, per
        # primitive, instead of the run ending without one.
        shown = json.loads(out)["shared"]
        assert set(shown) == {"value", "arr", "event", "q"}, shown
        assert all("unreadable" in value for value in shown.values()), shown
    finally:
        for proc in (runner_proc, workers, scheduler):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(30)


def test_primitives_live_in_the_scheduler_by_run_id_and_are_deleted_at_the_end(
        cluster: Cluster, run_cli: RunCLI, tmp_path: Path, env: dict[str, str]) -> None:
    module = task_module(tmp_path, "prims")
    path = config(tmp_path, (
        "shared:\n  value: {type: value, typecode: i}\n"
        "  arr: {type: array, typecode: i, size: 2}\n  lock: lock\n"
        "  sem: {type: semaphore, init: 2}\n  event: event\n  q: queue\n"
        + map_job(module, "touch_all", [1, 2, 3],
                  extra="    args: [!ref value, !ref arr, !ref lock, !ref sem, !ref event, "
                        "!ref q]\n")))
    data = ok_json(run_cli("run", str(path), "--dask-scheduler", cluster.address, "--json",
                           env=env))
    assert data["jobs"][0]["results"] == [1, 2, 3]
    shared = data["shared"]
    assert (shared["value"], shared["arr"], shared["event"]) == (6, [6, 0], True)
    assert sorted(item[0] for item in shared["q"]) == [1, 2, 3]
    def mprun_state(dask_scheduler: Any = None) -> list[str]:
        """Every name of mprun's left in the scheduler's primitive extensions (nested:
        it travels by value; the scheduler cannot import the tests)."""
        ext = dask_scheduler.extensions
        names = [*ext["variables"].variables, *ext["queues"].queues, *ext["events"]._events,
                 *ext["semaphores"].leases]
        return sorted(str(name) for name in names if str(name).startswith("mprun-"))

    left = cluster.client.run_on_scheduler(mprun_state)
    assert [name for name in left if data["run_id"] in name] == [], left
