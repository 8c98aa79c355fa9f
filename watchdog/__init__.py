"""evolution-watchdog: notices when an Evolution API + Dify bot stops answering, and repairs it."""

__version__ = "0.1.0"
