"""mprun's benchmark harness: ``python -m bench`` (see ``bench.__main__``).

It runs mprun end to end through its command line beside the ways people
write the same work without it (bare ``multiprocessing``,
``concurrent.futures``, joblib, mpire, the seed tutorial's scripts), each as a
fresh process timed from outside, repeated and interleaved, and reports
medians and ratios. Every workload checks its answer.

Kept import-free: worker processes of the peers import ``bench.tasks``, and
with it this package.
"""
