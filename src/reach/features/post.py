"""Post statistics (Web Appendix A, Table 6) as model covariates: hashtags, rank and age, sponsorship, creator."""

from __future__ import annotations

import numpy as np
import pandas as pd

POST_COLUMNS = {
    "num_hashtags": "hashtags on the post",
    "num_trending": "of those, trending that day",
    "has_fyp": "1 if the post carries #fyp",
    "hashtag_age": "days since the hashtag was first seen",
    "is_trending": "1 if the listing hashtag was trending",
    "ranking": "rank under the hashtag on the Discover page",
    "video_age": "days between posting and the earliest appearance",
    "is_sponsored": "1 if sponsored (isAd)",
    "is_verified": "1 if the creator is verified",
}


def post_statistics(videos: pd.DataFrame) -> np.ndarray:
    """(videos, 9) float64 in POST_COLUMNS order."""
    missing = [c for c in POST_COLUMNS if c not in videos]
    if missing:
        raise KeyError(f"videos table lacks post statistics {missing}")
    return np.column_stack([videos[c].astype(float).to_numpy() for c in POST_COLUMNS])
