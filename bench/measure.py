"""How things are measured: wall time of a whole process, and memory sampled with psutil.

Every measurement runs a command as a fresh child process from the
repository root and times it from outside with ``time.perf_counter``, so
interpreter start-up, imports, worker start-up and shutdown all count.

Memory is sampled from outside too, with psutil, every ``SAMPLE_SECONDS``:
``run_sampled`` sums the RSS (and the PSS, which splits shared pages between
the processes that map them) of the whole process tree and keeps the peak, and
the peak RSS of the command's own process alone;
``sample_worker`` follows one worker process by pid. Sampling costs a little
CPU in this process, the same for every side of a comparison.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SECONDS = 0.01
# The process tree is listed again every this many samples (listing costs ~3 ms).
TREE_EVERY = 5
MIB = 1024 * 1024


class BenchError(Exception):
    """A workload could not run, or gave a wrong answer."""


@dataclass
class Completed:
    """One finished command: its wall time, output and, when sampled, peak memory."""

    argv: list[str]
    code: int
    seconds: float
    stdout: str
    stderr: str
    peak_rss: int = 0  # bytes, summed over the process tree
    peak_pss: int = 0
    peak_root_rss: int = 0  # bytes, the command's own process alone (the runner, the script)

    def check(self) -> Completed:
        """Raise :class:`BenchError` unless the command exited 0."""
        if self.code != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise BenchError(f"exit {self.code}: {' '.join(self.argv)}\n{tail}")
        return self


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env.pop("MPRUN_LOG_DIR", None)
    # As users run Python: bytecode cached in __pycache__. With PYTHONDONTWRITEBYTECODE
    # (set on some CI machines) every module of mprun, an editable install, is compiled
    # again by every process, which a start-up figure would count; the scripts it is
    # compared with are one small file each.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_timed(argv: list[str], *, env: dict[str, str] | None = None,
              timeout: float = 600) -> Completed:
    """Run ``argv`` from the repository root; time it from start to exit."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=_env(env), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"timed out after {timeout:.0f} s: {' '.join(argv)}") from exc
    seconds = time.perf_counter() - started
    return Completed(argv, proc.returncode, seconds, proc.stdout, proc.stderr)


def _tree(root: Any) -> list[Any]:
    import psutil

    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def _memory(processes: list[Any], *, pss: bool) -> tuple[int, int]:
    import psutil

    rss = total_pss = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if pss:
                info = process.memory_full_info()
                rss += info.rss
                total_pss += info.pss
            else:
                rss += process.memory_info().rss
    return rss, total_pss


@contextlib.contextmanager
def _started(argv: list[str], env: dict[str, str] | None) -> Iterator[_Running]:
    """Start ``argv`` with its output going to temporary files (no pipe can fill up)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, env=_env(env), stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, text=True)
        running = _Running(argv, proc, started, out, err)
        try:
            yield running
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@dataclass
class _Running:
    argv: list[str]
    proc: subprocess.Popen[str]
    started: float
    out: IO[str]
    err: IO[str]

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def finish(self, timeout: float, **memory: int) -> Completed:
        try:
            self.proc.wait(max(0.0, timeout - self.elapsed()))
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"timed out after {timeout:.0f} s: {' '.join(self.argv)}") from exc
        seconds = self.elapsed()
        self.out.seek(0)
        self.err.seek(0)
        return Completed(self.argv, self.proc.returncode, seconds, self.out.read(),
                         self.err.read(), **memory)


def run_sampled(argv: list[str], *, env: dict[str, str] | None = None,
                timeout: float = 600) -> Completed:
    """Run ``argv`` like :func:`run_timed`, sampling its process tree's memory."""
    import psutil

    with _started(argv, env) as running:
        root = psutil.Process(running.proc.pid)
        peak_rss = peak_pss = peak_root = 0
        processes: list[Any] = [root]
        sample = 0
        while running.proc.poll() is None and running.elapsed() < timeout:
            full = sample % TREE_EVERY == 0
            if full:
                processes = _tree(root)
            rss, pss = _memory(processes, pss=full)
            peak_rss = max(peak_rss, rss)
            peak_pss = max(peak_pss, pss)
            peak_root = max(peak_root, _memory([root], pss=False)[0])
            sample += 1
            time.sleep(SAMPLE_SECONDS)
        return running.finish(timeout, peak_rss=peak_rss, peak_pss=peak_pss,
                              peak_root_rss=peak_root)


@dataclass
class WorkerMemory:
    pid: int
    peak_rss: int
    uss: int


def sample_worker(pidfile: Path, seconds: float, *, timeout: float = 60,
                  alive: subprocess.Popen[str] | None = None) -> WorkerMemory:
    """Wait for a task to write its pid to ``pidfile``; sample that process while it sleeps.

    Samples for about 80 % of the task's ``seconds`` of sleep: the peak RSS,
    and the USS (memory no other process shares) once, half-way.
    """
    import psutil

    deadline = time.monotonic() + timeout
    while not pidfile.exists():
        if alive is not None and alive.poll() is not None:
            raise BenchError(f"the command exited before a worker wrote {pidfile}")
        if time.monotonic() > deadline:
            raise BenchError(f"no worker wrote {pidfile} within {timeout:.0f} s")
        time.sleep(0.005)
    pid = int(pidfile.read_text())
    process = psutil.Process(pid)
    peak = uss = 0
    started = time.monotonic()
    window = 0.8 * seconds
    while (elapsed := time.monotonic() - started) < window:
        try:
            peak = max(peak, process.memory_info().rss)
            if not uss and elapsed >= window / 2:
                uss = process.memory_full_info().uss
        except psutil.Error as exc:
            raise BenchError(f"worker {pid} ended while being sampled: {exc}") from exc
        time.sleep(SAMPLE_SECONDS)
    return WorkerMemory(pid, peak, uss)


def run_sampling_worker(argv: list[str], pidfile: Path, seconds: float, *,
                        env: dict[str, str] | None = None,
                        timeout: float = 120) -> tuple[Completed, WorkerMemory]:
    """Run ``argv``, whose task writes ``pidfile`` and sleeps ``seconds``; sample that worker."""
    with _started(argv, env) as running:
        try:
            memory = sample_worker(pidfile, seconds, timeout=timeout, alive=running.proc)
        except BenchError:
            if running.proc.poll() is not None:
                running.finish(timeout).check()
            raise
        return running.finish(timeout), memory
