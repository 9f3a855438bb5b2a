"""`python -m taskd`. The light clients' commands go straight to climini: cli.py and
its argument parsers are not loaded for them (nor compiled, where bytecode is not
cached: 1.2 ms of a one-shot `taskd send`)."""

import sys

LIGHT = ("send", "status", "stop", "console")  # cli.LIGHT (a test checks they agree)

try:
    if len(sys.argv) > 1 and sys.argv[1] in LIGHT:
        from .climini import main
    else:
        from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the program is still being imported: quietly
    raise SystemExit(130) from None

raise SystemExit(main())
