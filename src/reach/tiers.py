"""Influencer tiers of paper 1, Section 4.2 (shared by the synthetic truth and the causal tables)."""

from __future__ import annotations

import numpy as np

# Influencer tiers of paper 1, Section 4.2 (followers, lower bound inclusive).
TIERS: tuple[tuple[str, float, float], ...] = (
    ("sub-nano", 0.0, 1e3),
    ("nano", 1e3, 1e4),
    ("micro", 1e4, 5e4),
    ("mid-tier", 5e4, 5e5),
    ("macro", 5e5, 1e6),
    ("mega", 1e6, np.inf),
)


def tier_of(followers: np.ndarray) -> np.ndarray:
    """Tier name for each follower count."""
    followers = np.asarray(followers, dtype=float)
    names = np.array([t[0] for t in TIERS], dtype=object)
    bounds = np.array([t[2] for t in TIERS[:-1]])
    return names[np.searchsorted(bounds, followers, side="right")]
