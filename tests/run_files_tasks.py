"""Tasks for tests/test_run_files.py: they fill the disk, remove the run's folder, or move
the working directory, as a task in the wild might."""

from __future__ import annotations

import os
import shutil

import runner

LINE = 3000  # a result this long: one journal line takes most of a 4 KiB page


def fill(folder: str) -> None:
    """Write into ``folder`` until its file system is full."""
    block = b"\0" * 65536
    with open(os.path.join(folder, f"filler-{os.getpid()}"), "ab", buffering=0) as file:
        while True:
            try:
                if not file.write(block):
                    return
            except OSError:
                return


def fill_disk_at(item: int, folder: str, at: int = 1) -> str:
    """A long result; the task for item ``at`` first fills the disk holding ``folder``, so
    that its journal line is written only in part."""
    if item == at:
        fill(folder)
    return "x" * LINE


def remove_run_folder_at(item: int, log_dir: str, at: int = 1) -> int:
    """``item``; the task for item ``at`` first deletes the run's folder (LOG_DIR/latest)."""
    if item == at:
        shutil.rmtree(os.path.realpath(os.path.join(log_dir, "latest")))
    return item


def chdir_root(item: int) -> int:
    """``item``, after moving the working directory to ``/`` (and logging a line there)."""
    os.chdir("/")
    runner.get_logger().info("moved to /", item=item)
    return item
