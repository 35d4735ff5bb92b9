"""Task functions the tests' configs call (importable in every worker as tests.tasks)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any


def square(x: int) -> int:
    return x * x


def add(a: Any, b: Any = 0, *rest: Any, **extra: Any) -> Any:
    return a + b + sum(rest) + sum(extra.values())


def echo(*args: Any, **kwargs: Any) -> Any:
    """Return exactly what it was called with."""
    return {"args": list(args), "kwargs": kwargs}


def fail_on(x: int, bad: int = 3) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def always_fail() -> None:
    raise RuntimeError("this task always fails")


def pid(_: Any = None) -> int:
    return os.getpid()


def thread_name(_: Any = None) -> str:
    return threading.current_thread().name


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def shout(text: str) -> str:
    """Print to stdout (and stderr) from the task, as user code does."""
    print(f"task says {text}", flush=True)
    print(f"task warns {text}", file=sys.stderr, flush=True)
    return text


def log_something(x: int) -> int:
    import runner

    runner.get_logger().info("hello from task", x=x)
    return x


def unpicklable_result(_: Any = None) -> Any:
    return lambda: None


def increment(counter: Any, lock: Any, times: int = 100) -> int:
    for _ in range(times):
        with lock:
            counter.value += 1
    return counter.value


def put(q: Any, item: Any) -> None:
    q.put(item)


def set_event(event: Any) -> bool:
    event.set()
    return True


def describe(obj: Any) -> str:
    return type(obj).__name__


def not_callable_target() -> None:  # placeholder so the module imports
    return None


NOT_CALLABLE = 42


# -- for tests/test_executors.py ------------------------------------------------


def identity(x: Any) -> Any:
    return x


def maybe_fail(x: Any, fail: bool = False, delay: float = 0.0) -> Any:
    """Sleep ``delay``, then raise ValueError if ``fail``, else return ``x``."""
    time.sleep(delay)
    if fail:
        raise ValueError(f"task {x} was told to fail")
    return x


def where(_: Any = None) -> list[Any]:
    """The process and thread the task ran in: ``[pid, thread name]``."""
    return [os.getpid(), threading.current_thread().name]


def track_concurrency(_: Any, running: Any, peak: Any, lock: Any, delay: float = 0.2,
                      until: int = 0) -> int:
    """Count tasks inside this function at once (shared Values under a Lock); stay at
    least ``delay`` seconds, and then until ``until`` tasks have been inside at once (10 s
    at most: a worker that starts late, under spawn on a busy machine, still overlaps)."""
    with lock:
        running.value += 1
        peak.value = max(peak.value, running.value)
    time.sleep(delay)
    deadline = time.monotonic() + 10
    while peak.value < until and time.monotonic() < deadline:
        time.sleep(0.01)
    with lock:
        running.value -= 1
    return os.getpid()


def use_primitives(x: int, total: Any, slots: Any, lock: Any, rlock: Any, sem: Any,
                   event: Any, q: Any, barrier: Any) -> int:
    """Touch every kind of shared primitive once; return ``x``."""
    barrier.wait(timeout=30)  # every party must be running at once
    with lock:
        total.value += x + 1
    with rlock, rlock:  # re-entrant
        slots[0] += 1
    with sem:
        slots[1] += 1
    event.set()
    q.put(x)
    return x


def wait_event(event: Any, timeout: float = 5.0) -> bool:
    return bool(event.wait(timeout))


def put_item(item: Any, q: Any) -> Any:
    q.put(item)
    return item


def put_many(q: Any, tag: str, count: int, size: int) -> int:
    """Put more bytes on a queue than its pipe holds, so the process cannot exit unread.

    Items are ``"TAG-000123....."`` padded to ``size`` characters.
    """
    for index in range(count):
        q.put(f"{tag}-{index:06d}".ljust(size, "."))
    return count


def type_names(*args: Any, **kwargs: Any) -> Any:
    """Replace every leaf of the arguments by its type's name (refs become primitives)."""
    def names(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [names(item) for item in value]
        if isinstance(value, dict):
            return {key: names(item) for key, item in value.items()}
        return type(value).__name__
    return {"args": names(args), "kwargs": names(kwargs)}


def roundtrip(value: Any, array: Any, new_value: Any, new_items: list[Any]) -> list[Any]:
    """Read a shared Value and Array as the worker sees them, then overwrite both."""
    seen = [value.value, list(array[:])]
    value.value = new_value
    array[:] = new_items
    return seen


def die_on(x: int, bad: int = 1, how: str = "exit") -> int:
    """End this process on item ``bad``: ``os._exit(3)`` ("exit"), SIGTERM ("term") or SIGKILL."""
    if x == bad:
        sys.stdout.flush()
        if how == "exit":
            os._exit(3)
        if how == "exit0":
            os._exit(0)
        if how == "segv":
            import ctypes

            ctypes.string_at(0)  # reads address 0: SIGSEGV
        os.kill(os.getpid(), signal.SIGTERM if how == "term" else signal.SIGKILL)
        time.sleep(10)  # pragma: no cover - the signal arrives first
    return x


def lambda_on(x: int, bad: int = 1) -> Any:
    """A result that cannot be pickled (a lambda) for item ``bad``."""
    return (lambda: x) if x == bad else x


def raise_base(kind: str) -> str:
    """Raise an exception that is not an ``Exception``."""
    if kind == "exit":
        sys.exit(5)
    if kind == "interrupt":
        raise KeyboardInterrupt("stop here")
    if kind == "base":
        raise BaseException("plain BaseException")
    return kind


def descending(values: list[Any]) -> list[Any]:
    """A reducer named as "module:qualname"."""
    return sorted(values, reverse=True)


def sort_in_place(values: list[Any]) -> Any:
    """A reducer that sorts the list it is given, descending, and returns its head."""
    values.sort(reverse=True)
    return values[0]


def put_big(letter: str, q: Any) -> None:
    """Put an item far larger than a pipe's buffer on a shared queue."""
    q.put(letter * 1_000_000)


def kill_idle_sibling(x: int, victim: Any, killed: Any) -> int:
    """Item 0 records its worker's pid and returns; item 2 kills that worker once it
    is idle (once per run), then exits its own worker; other items return themselves.

    With chunks [0, 1] and [2, 3] on two workers, the runner must then rerun [2, 3]
    with the first worker already dead, though it never held a task when it died.
    """
    if x == 0:
        victim.value = os.getpid()
    elif x == 2:
        deadline = time.monotonic() + 10
        while victim.value == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with killed.get_lock():
            first = killed.value == 0
            killed.value = 1
        if first:
            time.sleep(0.3)  # item 0's worker finishes its chunk and waits, idle
            os.kill(victim.value, signal.SIGKILL)
            time.sleep(0.3)
        os._exit(3)
    return x


def sigterm_handler(_: Any = None) -> str:
    """What SIGTERM does in the process running this task."""
    handler = signal.getsignal(signal.SIGTERM)
    return handler.name if isinstance(handler, signal.Handlers) else repr(handler)


def sleep_then_where(seconds: float) -> list[Any]:
    """Sleep, then say which process and thread ran the task."""
    time.sleep(seconds)
    return where()


# -- for tests/test_redact.py and tests/test_log_integrity.py ---------------------


def login(user: str, password: str) -> str:
    """Log the secret under secret-looking keys (mprun must mask it); return its sha256,
    which proves the task received the real value."""
    import hashlib

    import runner

    runner.get_logger().info("logging in", user=user, password=password,
                             creds={"apiToken": password, "user": user},
                             attempts=[{"DB_PASSWORD": password}])
    return hashlib.sha256(password.encode()).hexdigest()


def connect(dsn: str, auth: str, fail: bool = False) -> str:
    """Log ``dsn`` and ``auth`` under ordinary keys and in the message text; raise a
    ValueError quoting both if ``fail``; else return the sha256 of ``dsn|auth``, which
    proves the task received the real values."""
    import hashlib

    import runner

    runner.get_logger().info(f"connecting to {dsn}", dsn=dsn, auth=auth)
    if fail:
        raise ValueError(f"cannot connect to {dsn} with {auth}")
    return hashlib.sha256(f"{dsn}|{auth}".encode()).hexdigest()


def write_log_lines(path: str, count: int, tag: str = "", pad: int = 0) -> int:
    """Configure mprun's logging to ``path`` in this process and log ``count`` lines
    (``seq`` 0..count-1, ``tag``, ``pad`` characters of padding)."""
    from runner import log

    log.configure(path=path, run_id="integrity", process="worker")
    logger = log.logger()
    for seq in range(count):
        logger.info("line", seq=seq, tag=tag, pad="x" * pad)
    return count


def log_until_killed(path: str, pad: int) -> None:
    """Log padded lines to ``path`` as fast as possible until the process is killed."""
    from runner import log

    log.configure(path=path, run_id="integrity", process="worker")
    logger = log.logger()
    seq = 0
    while True:
        logger.info("line", seq=seq, pad="x" * pad)
        seq += 1


def flaky(x: Any, calls: Any, fail_times: int = 2) -> Any:
    """Fail the first ``fail_times`` calls (counted in a shared Value), then return ``x``."""
    with calls.get_lock():
        calls.value += 1
        call = calls.value
    if call <= fail_times:
        raise ConnectionError(f"call {call} failed")
    return x


def meet(x: int, linger: float, barrier: Any) -> int:
    """Wait (briefly) for a partner task at ``barrier``, linger, then return ``x``."""
    barrier.wait(timeout=5)
    time.sleep(linger)
    return x


def stubborn_sleep(seconds: float) -> float:
    """Sleep, ignoring SIGTERM, as a task stuck in code that masks signals would."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)
    return seconds


def hold_and_die(lock: Any) -> None:
    """Take a shared lock and die holding it."""
    lock.acquire()
    os._exit(1)


def take_lock_later(lock: Any) -> bool:
    """Take a shared lock after the other task has (it never gets it if that task died)."""
    time.sleep(0.5)
    with lock:
        return True


def nap(seconds: float, marks: str) -> float:
    """Leave a file in ``marks`` as the task begins, then sleep: a test sees it running."""
    with open(os.path.join(marks, f"{os.getpid()}-{time.monotonic_ns()}"), "w"):
        pass
    time.sleep(seconds)
    return seconds


def tally(x: Any, calls: str, fail_flag: str = "") -> Any:
    """Leave a file in ``calls`` naming ``x``; fail items divisible by 3 while
    ``fail_flag`` exists. A test sees exactly which tasks ran."""
    with open(os.path.join(calls, f"{x}-{time.monotonic_ns()}"), "w"):
        pass
    if fail_flag and os.path.exists(fail_flag) and isinstance(x, int) and x % 3 == 0:
        raise ValueError(f"{x} fails while {fail_flag} exists")
    return x * x if isinstance(x, int) else x


# -- for tests/test_load.py -----------------------------------------------------


def load_task(x: int, runner_pid: int, total: Any, peak_fds: Any, lock: Any, q: Any) -> int:
    """Return ``x * x``; under ``lock``, add ``x`` to ``total`` and raise ``peak_fds`` to
    the runner's open file descriptors right now; put every 1000th ``x`` on ``q``."""
    fds = len(os.listdir(f"/proc/{runner_pid}/fd"))
    with lock:
        total.value += x
        peak_fds.value = max(peak_fds.value, fds)
    if x % 1000 == 0:
        q.put(x)
    return x * x


def tally_slowly(x: Any, calls: str, fail_flag: str = "") -> Any:
    """``tally`` after 0.15 s: a run a test can stop part way."""
    time.sleep(0.15)
    return tally(x, calls, fail_flag)


def slow_sum(values: list[Any]) -> Any:
    """A reduce that takes a while: a test can signal the runner during it. It first
    leaves the file named by $MPRUN_TEST_REDUCE_MARK, if set: a test sees it begin."""
    mark = os.environ.get("MPRUN_TEST_REDUCE_MARK")
    if mark:
        with open(mark, "w"):
            pass
    time.sleep(2)
    return sum(values)


def complex_of(x: int) -> complex:
    """A result JSON cannot hold."""
    return complex(x, x)


def hang_at(x: int, hang: int, calls: str, how: str = "sleep") -> int:
    """Leave a file in ``calls`` naming ``x`` (a test counts each item's runs), then return
    ``x * 10``; item ``hang`` sleeps a minute first: ``how`` is ``sleep``, ``deaf`` (it
    ignores SIGTERM) or ``once`` (only while no file ``hung`` is in ``calls``)."""
    with open(os.path.join(calls, f"{x}-{os.getpid()}-{time.monotonic_ns()}"), "w"):
        pass
    if x == hang:
        flag = os.path.join(calls, "hung")
        if how == "deaf":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if how != "once" or not os.path.exists(flag):
            if how == "once":
                with open(flag, "w"):
                    pass
            time.sleep(60)
    return x * 10
