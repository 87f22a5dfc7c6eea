from launcher.emulator.vast.cli import main

raise SystemExit(main())
