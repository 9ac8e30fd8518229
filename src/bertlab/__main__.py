"""``python -m bertlab ...``: the command line of :mod:`bertlab.cli`."""

from .cli import main

raise SystemExit(main())
