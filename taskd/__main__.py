"""`python -m taskd`."""

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the program is still being imported: quietly
    raise SystemExit(130) from None

raise SystemExit(main())
