"""A job module that takes its time to import: it leaves a file in $SLOW_IMPORT_MARKS,
then sleeps (tests/test_signals.py signals mprun while configs load)."""

import os
import time
from pathlib import Path

Path(os.environ["SLOW_IMPORT_MARKS"], "importing").write_text("")
time.sleep(60)


def task(item: int) -> int:
    return item
