"""Command-line helper shared by the benchmarks that compare named variants of a configuration."""

from __future__ import annotations

import json


def named_json(item: str) -> tuple[str, dict]:
    """argparse type for NAME=JSON (e.g. spline='{"response": "spline"}'); an empty JSON part means no overrides."""
    name, _, spec = item.partition("=")
    if not name:
        raise ValueError(f"expected NAME=JSON, got {item!r}")
    return name, json.loads(spec or "{}")
