"""``python -m analysis``: the command line (``analysis.cli``)."""

import sys

from analysis.cli import main

sys.exit(main())
