"""`python -m dynorm`: the dynorm command line."""

from .cli import main

raise SystemExit(main())
