"""``python3 -m launcher.runner …``: see :mod:`launcher.runner.cli`."""

from launcher.runner.cli import main

raise SystemExit(main())
