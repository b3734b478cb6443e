"""Command line: `python -m core.detection {synthetic,predict,evaluate} ...` (see core.detection.cli)."""

from core.detection.cli import main

raise SystemExit(main())
