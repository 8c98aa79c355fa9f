from watchdog.commands.cli import main

raise SystemExit(main())
