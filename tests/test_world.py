"""The synthetic world: truth consistent with the files, a real causal problem, paper-like marginals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from reach.scrape.ingest import ingest
from reach.synthetic.fei import fei_curve, fei_integral
from reach.synthetic.scrapes import write_scrapes
from reach.synthetic.world import LOG_FOLLOWERS_REF, WorldSpec, expected_videos, simulate, truth_tables
from reach.tiers import TIERS, tier_of

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow_config.yaml").read_text())
WORLD = {k: v for k, v in CONFIG["world"].items() if k in WorldSpec.__dataclass_fields__}
DEFAULT = WorldSpec(seed=CONFIG["seed"], **WORLD)   # the default world of workflow_config.yaml


@pytest.fixture(scope="module")
def world():
    return simulate(DEFAULT)


@pytest.fixture(scope="module")
def small_written(tmp_path_factory):
    spec = WorldSpec(seed=11, n_hashtags=12, videos_per_hashtag=40, n_sponsored=3, junk_share=0.01)
    w = simulate(spec)
    root = tmp_path_factory.mktemp("scrapes")
    junk, index, missing = write_scrapes(w, spec, root)
    return spec, w, root, junk, index, missing


def test_same_seed_same_world_other_seed_other_world():
    a, b = simulate(WorldSpec(seed=5, n_hashtags=6, videos_per_hashtag=10)), simulate(WorldSpec(seed=5, n_hashtags=6, videos_per_hashtag=10))
    pd.testing.assert_frame_equal(a.videos, b.videos)
    pd.testing.assert_frame_equal(a.listings, b.listings)
    c = simulate(WorldSpec(seed=6, n_hashtags=6, videos_per_hashtag=10))
    assert not np.allclose(a.videos["log_impressions"][:20], c.videos["log_impressions"][:20])


def test_default_scale(world):
    """Paper 1's challenges hold 1,500-2,000 videos (Web Appendix B); the default world's campaigns about 1,000 each."""
    v = world.videos
    assert len(v) >= 7000 and v["hashtag"].nunique() >= 20
    per_campaign = v.loc[v["campaign_type"] != "organic"].groupby("hashtag").size()
    assert len(per_campaign) == DEFAULT.n_sponsored and per_campaign.min() >= 850, per_campaign


def test_videos_per_campaign_sets_the_campaign_sizes():
    spec = WorldSpec(seed=3, n_hashtags=10, videos_per_hashtag=30, n_sponsored=4, videos_per_campaign=200)
    w = simulate(spec)
    sizes = w.hashtags.set_index("hashtag")["n_videos"]
    sponsored = w.hashtags.loc[w.hashtags["is_commerce"], "n_videos"]
    organic = w.hashtags.loc[~w.hashtags["is_commerce"], "n_videos"]
    assert ((sponsored >= 160) & (sponsored <= 240)).all() and sponsored.nunique() > 1   # +-20%, not all equal
    assert abs(organic.sum() - 6 * 30) <= 3                                               # organic share their total
    assert abs(len(w.videos) - expected_videos(10, 30, 4, 200)) <= len(sizes)            # up to rounding
    assert expected_videos(10, 30, 4) == 300
    with pytest.raises(ValueError, match="videos_per_campaign"):
        simulate(WorldSpec(seed=3, n_hashtags=10, videos_per_hashtag=30, videos_per_campaign=2))


def test_fei_is_the_derivative_of_h(world):
    """Closed-form integral against a numerical derivative (independent of the integral's algebra)."""
    grid = np.linspace(np.log(100), np.log(5e7), 201)
    sub = slice(0, 300)
    from reach.synthetic.fei import FeiParams
    p = world.fei_params
    ps = FeiParams(*(getattr(p, f)[sub] for f in ("const", "amp", "peak", "width", "drop", "mid", "scale")))
    h = fei_integral(ps, grid, LOG_FOLLOWERS_REF)
    numeric = np.gradient(h, grid, axis=1)
    np.testing.assert_allclose(numeric[:, 1:-1], fei_curve(ps, grid)[:, 1:-1], atol=2e-3)
    np.testing.assert_allclose(fei_integral(ps, np.array([LOG_FOLLOWERS_REF]), LOG_FOLLOWERS_REF), 0.0, atol=1e-12)


def test_structural_equation_holds(world):
    v = world.videos
    # log R = h(log F, x) + 0.5 u + eps, up to rounding of counts (and the 100-impression floor)
    resid = v["log_impressions"] - (v["h_at_followers"] + 0.5 * v["confounder"] + v["noise"])
    assert np.abs(resid[v["impressions"] > 100]).max() < 1e-3


def test_instrument_relevant_and_excluded(world):
    c = world.creators
    r = np.corrcoef(c["log_past_hearts_level"], np.log(c["followers"]))[0, 1]
    assert 0.6 < r < 0.8                       # paper: 0.736
    assert abs(np.corrcoef(c["log_past_hearts_level"], c["crosspost"])[0, 1]) < 0.05
    v = world.videos
    z = c["log_past_hearts_level"].to_numpy()[v["creator"]]
    for k in range(6):
        assert abs(np.corrcoef(z, v[f"content_{k}"] - v.groupby("hashtag")[f"content_{k}"].transform("mean"))[0, 1]) < 0.08


def test_confounding_biases_the_naive_slope(world):
    """OLS of log R on log F (no instrument) overstates the average FEI: the causal problem is real."""
    v = world.videos
    slope = np.polyfit(v["log_followers"], v["log_impressions"], 1)[0]
    assert slope > v["fei_at_followers"].mean() + 0.1
    # 2SLS with the instrument recovers a slope near the average FEI at observed followers
    z = world.creators["log_past_hearts_level"].to_numpy()[v["creator"]]
    iv = np.cov(z, v["log_impressions"])[0, 1] / np.cov(z, v["log_followers"])[0, 1]
    assert abs(iv - v["fei_at_followers"].mean()) < abs(slope - v["fei_at_followers"].mean()) / 2


def test_marginals_like_tables_1_and_6(world):
    v = world.videos
    assert 40_000 < v["followers"].median() < 90_000             # Table 1 median 60,102
    assert v["followers"].mean() / v["followers"].median() > 4   # heavy right tail (Table 1: 8x)
    assert 5e5 < v["impressions"].mean() < 2.5e6                 # Table 1 mean 1.04M
    assert 0.5 < v["has_fyp"].mean() < 0.7                       # Table 6: 0.604
    assert 5 < v["num_hashtags"].mean() < 8                      # Table 6: 6.66
    assert 0.6 < v["is_trending"].mean() < 0.9                   # Table 6: 0.767
    assert v["hashtag_age"].median() <= 2 and v["hashtag_age"].mean() > 3
    assert v["video_age"].median() < 3 and v["video_age"].mean() > 15


def test_campaign_shapes_like_table_4(world):
    grid = np.linspace(np.log(100), np.log(5e7), 61)
    camp = truth_tables(world, grid)["campaign_tiers"]
    tiers = [t[0] for t in TIERS]
    for _, row in camp.iterrows():
        f = row[tiers].to_numpy(dtype=float)
        assert (f > 0).all() and (f < 0.9).all()
        if row["campaign_type"] == "s_shaped":
            assert np.argmax(f) in (1, 2) and f[-1] < 0.5 * f.max() and f[0] < f.max()
        elif row["campaign_type"] == "linear":
            assert f.max() - f.min() < 0.08
        else:
            assert (np.diff(f) < 0).all()


def test_topics_and_tactics_shift_fei(world):
    v = world.videos
    org = v[v["campaign_type"] == "organic"]
    by_topic = org.groupby("topic")["fei_at_followers"].mean()
    assert by_topic["holidays"] == by_topic.min()                 # Figure 8: holidays lowest
    grid = np.linspace(np.log(100), np.log(5e7), 61)
    fei = fei_curve(world.fei_params, grid)
    gaming = fei[(v["topic"] == "gaming").to_numpy() & (v["campaign_type"] == "organic").to_numpy()].mean(0)
    food = fei[(v["topic"] == "food").to_numpy() & (v["campaign_type"] == "organic").to_numpy()].mean(0)
    assert grid[np.argmax(gaming)] > grid[np.argmax(food)] + 1.5  # gaming peaks much later than food


def test_tiers():
    assert list(tier_of([999, 1000, 49_999, 50_000, 999_999, 1_000_000])) == \
        ["sub-nano", "nano", "micro", "mid-tier", "macro", "mega"]


def test_truth_matches_the_written_files(small_written):
    spec, w, root, junk, index, missing = small_written
    out = ingest(root, impressions_day=spec.days_tracked, require_media=False)
    truth = w.videos.set_index("video_id")
    got = out.videos.set_index("video_id")
    assert set(got.index) == set(truth.index)
    np.testing.assert_array_equal(got["impressions"], truth.loc[got.index, "impressions"])
    np.testing.assert_array_equal(got["followers"], truth.loc[got.index, "followers"])
    np.testing.assert_array_equal(got["hashtag"], truth.loc[got.index, "hashtag"])
    np.testing.assert_array_equal(got["ranking"], truth.loc[got.index, "rank"])
    np.testing.assert_array_equal(got["is_trending"], truth.loc[got.index, "is_trending"])
    np.testing.assert_array_equal(got["hashtag_age"], truth.loc[got.index, "hashtag_age"])
    np.testing.assert_allclose(got["video_age"], truth.loc[got.index, "video_age"], atol=1.0)
    # instrument from the files tracks the creator's hidden past-hearts level
    level = w.creators["log_past_hearts_level"].to_numpy()[truth.loc[got.index, "creator"]]
    assert np.corrcoef(got["log_past_avg_hearts"], level)[0, 1] > 0.9
    # daily plays follow y_t = A log t + B (Web Appendix G, Eq. 17) within the 1% observation noise
    daily = out.daily_plays.merge(w.videos[["video_id", "growth_a", "growth_b"]], on="video_id")
    pred = np.exp(daily["growth_a"]) * np.log(daily["day"]) + np.exp(daily["growth_b"])
    assert np.median(np.abs(daily["plays"] / pred - 1)) < 0.02


def test_injected_junk_is_exactly_what_ingestion_refuses(small_written):
    spec, w, root, junk, index, missing = small_written
    out = ingest(root, impressions_day=spec.days_tracked, require_media=False)
    line_junk = junk[~junk["kind"].isin(["duplicate_line", "media_missing"])]
    refused = {(r["file"], r["line"]) for r in out.rejected}
    assert refused == set(zip(line_junk["file"], line_junk["line"]))
    by_line = {(r["file"], r["line"]): r["reason"].split(":")[0] for r in out.rejected}
    for f, ln, kind in zip(line_junk["file"], line_junk["line"], line_junk["kind"]):
        assert by_line[(f, ln)] == kind
    assert out.summary["records"]["duplicates"] >= int((junk["kind"] == "duplicate_line").sum())
    assert len(missing) >= 1


def test_campaign_size_and_noise_knobs():
    """world.campaign_size_factor scales only the sponsored hashtags; impressions_noise_sd is the sd of Eq. 6's noise
    (benchmarks/fei_identification.py varies both)."""
    small = dict(seed=7, n_hashtags=12, videos_per_hashtag=40, n_sponsored=3)
    base = simulate(WorldSpec(**small))
    big = simulate(WorldSpec(**small, campaign_size_factor=3.0, impressions_noise_sd=0.2))
    size = lambda w: w.hashtags.set_index("hashtag")["n_videos"]  # noqa: E731
    commerce = base.hashtags.set_index("hashtag")["is_commerce"]
    np.testing.assert_array_equal(size(big)[~commerce], size(base)[~commerce])
    np.testing.assert_array_equal(size(big)[commerce], np.round(size(base)[commerce] * 3.0))
    assert abs(big.videos["noise"].std() - 0.2) < 0.02 and abs(base.videos["noise"].std() - 0.6) < 0.05
    with pytest.raises(ValueError, match="campaign_size_factor"):
        simulate(WorldSpec(**small, campaign_size_factor=0.0))
