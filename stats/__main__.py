"""`python -m stats ...`: see stats.cli."""

import sys

from stats.cli import main

sys.exit(main())
