"""``python -m archive_tools.bench``: see :mod:`archive_tools.bench.cli`."""

import sys

from .cli import main

sys.exit(main())
