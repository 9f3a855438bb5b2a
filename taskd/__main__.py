"""`python -m taskd`."""

from .cli import main

raise SystemExit(main())
