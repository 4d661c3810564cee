"""build_design (paper 1, Eq. 6): the rows of videos.parquet, r.parquet and the post statistics are aligned by
video_id, never by position; every misalignment or missing value is an error naming the file and a video."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reach.causal.design import build_design

IDS = ["6818860574913336912", "7", "42", "6818860574913336000"]


def inputs(n_r: int = 3):
    """Four videos with distinct values everywhere, so any row or column mix-up shows."""
    videos = pd.DataFrame({"video_id": [int(v) for v in IDS],               # ints here, strings elsewhere
                           "log_followers": [9.0, 10.0, 11.0, 12.0],
                           "log_past_avg_hearts": [3.0, 4.0, 5.0, 6.0],
                           "log_impressions": [13.0, 14.0, 15.0, 16.0]})
    r = {f"r_{k}": [100 * (i + 1) + k for i in range(len(IDS))] for k in (0, 2, 10)[:n_r]}
    representation = pd.DataFrame({"video_id": IDS, "split": "train", **r})
    post = np.array([[i + 0.5, -(i + 0.5)] for i in range(len(IDS))])
    return videos, representation, post, np.array(IDS), ["ranking", "has_fyp"]


def test_rows_follow_videos_order_by_video_id():
    videos, rep, post, post_ids, cols = inputs()
    shuffled = rep.iloc[[2, 0, 3, 1]].reset_index(drop=True)
    extra = pd.DataFrame({"video_id": ["999"], "split": "test", "r_0": [-1], "r_2": [-1], "r_10": [-1]})
    d = build_design(videos, pd.concat([shuffled, extra], ignore_index=True), post, post_ids, cols)
    assert d.video_id.tolist() == IDS
    # r_10 after r_2 (numeric order of k, not the string order r_0, r_10, r_2), then the post statistics
    assert d.x_columns == ["r_0", "r_2", "r_10", "ranking", "has_fyp"]
    expected = np.array([[100 * (i + 1), 100 * (i + 1) + 2, 100 * (i + 1) + 10, i + 0.5, -(i + 0.5)]
                         for i in range(4)], float)
    np.testing.assert_array_equal(d.x, expected)
    np.testing.assert_array_equal(d.t, [9, 10, 11, 12])
    np.testing.assert_array_equal(d.z, [3, 4, 5, 6])
    np.testing.assert_array_equal(d.y, [13, 14, 15, 16])
    assert d.x.dtype == np.float64 and d.x.shape == (4, 5)


def test_a_video_without_r_is_an_error_naming_it_and_the_file():
    videos, rep, post, post_ids, cols = inputs()
    with pytest.raises(ValueError, match=r"1 videos of results/ingest/videos.parquet have no representation r, "
                                         r"e\.g\. \['42'\]"):
        build_design(videos, rep[rep["video_id"] != "42"], post, post_ids, cols,
                     source="results/ingest/videos.parquet")
    with pytest.raises(ValueError, match="no r_<k> columns"):
        build_design(videos, rep[["video_id", "split"]], post, post_ids, cols)


def test_post_statistics_out_of_order_or_short_are_errors():
    videos, rep, post, post_ids, cols = inputs()
    swapped = post_ids[[0, 2, 1, 3]]
    with pytest.raises(ValueError, match=r"post statistics are not aligned to videos.parquet "
                                         r"\(first differing row: 1\)"):
        build_design(videos, rep, post[[0, 2, 1, 3]], swapped, cols)
    with pytest.raises(ValueError, match="length differs"):
        build_design(videos, rep, post[:3], post_ids[:3], cols)


@pytest.mark.parametrize("column, name", [("log_followers", "t"), ("log_past_avg_hearts", "z"),
                                          ("log_impressions", "y")])
def test_missing_or_infinite_values_name_the_array_and_the_video(column, name):
    videos, rep, post, post_ids, cols = inputs()
    videos.loc[2, column] = np.nan
    with pytest.raises(ValueError,
                       match=rf"^{name} is missing or infinite for 1 videos of my.parquet, e\.g\. video 42$"):
        build_design(videos, rep, post, post_ids, cols, source="my.parquet")
    videos.loc[2, column] = 1.0
    videos.loc[3, column] = np.inf
    with pytest.raises(ValueError, match=rf"^{name} is missing or infinite .* video 6818860574913336000$"):
        build_design(videos, rep, post, post_ids, cols, source="my.parquet")


def test_missing_values_in_r_or_post_are_errors_for_x():
    videos, rep, post, post_ids, cols = inputs()
    rep.loc[rep["video_id"] == "7", "r_2"] = np.nan
    with pytest.raises(ValueError, match=r"^x is missing or infinite for 1 videos .* video 7$"):
        build_design(videos, rep, post, post_ids, cols)
    videos, rep, post, post_ids, cols = inputs()
    post[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"^x is missing .* video 6818860574913336912$"):
        build_design(videos, rep, post, post_ids, cols)


def test_hashtag_indicators_end_x_one_column_per_hashtag():
    videos, rep, post, post_ids, cols = inputs()
    videos["hashtag"] = ["GlowUp", "Blend", "GlowUp", "Denim"]
    d = build_design(videos, rep, post, post_ids, cols, hashtag_indicators=True)
    assert d.n_hashtag_columns == 3
    assert d.x_columns[-3:] == ["hashtag=Blend", "hashtag=Denim", "hashtag=GlowUp"]
    np.testing.assert_array_equal(d.x[:, -3:], [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    plain = build_design(videos, rep, post, post_ids, cols)
    np.testing.assert_array_equal(d.x[:, :-3], plain.x)
    assert plain.n_hashtag_columns == 0
    videos.loc[1, "hashtag"] = None
    with pytest.raises(ValueError, match="hashtag for every video of videos.parquet"):
        build_design(videos, rep, post, post_ids, cols, hashtag_indicators=True)
