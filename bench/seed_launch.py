"""Run the seed's pool script (``seed_pool.py``, kept verbatim) under a chosen start method.

``python bench/seed_launch.py forkserver`` sets the start method, then calls
the seed's ``multicore()``. The seed script is imported as a module, so its
``job`` pickles by reference and forkserver workers can find it. Run
``python bench/seed_pool.py`` directly for the platform default (fork on
Linux before Python 3.14).
"""

import multiprocessing as mp
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    import seed_pool

    seed_pool.multicore()
