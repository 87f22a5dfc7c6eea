from launcher.emulator.cli import main

raise SystemExit(main())
