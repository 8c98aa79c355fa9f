"""`evo-watchdog doctor`: known stuck modes of an Evolution + Dify stack, each with its fix.

fetch (I/O, through the existing clients) -> snapshot (plain values) -> checks (pure) -> render;
fixes applies the safe ones only.
"""
