"""Command line: `python -m core.nb101 enumerate --out FILE [--max-vertices N]`."""

from core.nb101.cli import main

raise SystemExit(main())
