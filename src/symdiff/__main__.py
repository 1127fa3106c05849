"""Run the symdiff command line: python -m symdiff ..."""

from .cli import main

raise SystemExit(main())
