"""``python -m runner`` is ``mprun``."""

from runner.cli import main

raise SystemExit(main())
