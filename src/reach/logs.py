"""Logging for rule scripts: everything to the rule's log file, warnings also to stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(log_path: str | Path, name: str = "reach") -> logging.Logger:
    """Route the ``reach`` logger (and the script's) to ``log_path``; return the script's logger."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    file_handler.setFormatter(fmt)
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(logging.WARNING)
    stderr_handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [file_handler, stderr_handler]
    root.setLevel(logging.INFO)
    return logging.getLogger(name)
