"""A dask worker preload that makes its worker report another mprun version
(tests/test_dask_remote.py: a worker of another version is refused before any job runs)."""

import runner

runner.__version__ = "0.0.1-old"
