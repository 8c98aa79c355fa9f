"""`evo-watchdog <command>`: the parser and dispatch (cli.py) and one module per small command; the bigger
ones have rooms of their own (watchdog/doctor, watchdog/demo, watchdog/sim)."""

EXIT_OK, EXIT_UNHEALTHY, EXIT_CONFIG = 0, 1, 2  # `check` and the admin commands; doctor has its own
