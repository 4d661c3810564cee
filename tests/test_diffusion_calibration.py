"""Promotion logs (simulator, validation) and the Section 6.2 calibration against the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reach.diffusion import calibrate as C
from reach.diffusion.data import validate_promotion_logs
from reach.diffusion.dynamics import simulate_pbdm
from reach.synthetic.promotion_logs import PromotionLogSpec, draw_category_pq, simulate_promotion_logs

SMALL = PromotionLogSpec(n_categories=6, videos_min=40, videos_max=80, hours=200, min_hours=60,
                         video_heterogeneity=0.0)


@pytest.fixture(scope="module")
def small_logs():
    return simulate_promotion_logs(SMALL, seed=3)


def test_category_pq_match_the_published_summary():
    p, q = draw_category_pq(PromotionLogSpec(), np.random.default_rng(0))
    assert p.size == 61 and (p > 0).all() and (q > 0).all() and (p + q <= 1).all()
    assert (p.mean(), p.std(ddof=1), q.mean(), q.std(ddof=1)) == pytest.approx((0.156, 0.055, 0.0547, 0.0225), rel=1e-9)
    assert np.corrcoef(p, q)[0, 1] == pytest.approx(-0.53, abs=1e-9)


def test_simulated_logs_follow_the_contract(small_logs):
    logs, cats, videos, meta = small_logs
    assert list(logs.columns) == ["video_id", "category", "period", "exposed", "direct_clicks", "indirect_clicks"]
    assert meta["market"] == 518_646 and len(cats) == 6
    assert cats["n_videos"].min() == 40 and cats["n_videos"].max() == 80
    assert (logs["direct_clicks"] <= logs["exposed"]).all() and (logs[["exposed", "direct_clicks",
                                                                      "indirect_clicks"]] >= 0).all().all()
    per_video = logs.groupby("video_id")["period"].agg(["min", "max", "size"])
    assert (per_video["min"] == 0).all() and (per_video["size"] == per_video["max"] + 1).all()
    assert 0.0003 < meta["mean_promotion_fraction"] < 0.0012
    # promotion follows adoption: last hour's clicks and this hour's exposure are positively correlated
    lag = logs.groupby("video_id")["indirect_clicks"].shift(1)
    ok = lag.notna()
    assert stats.spearmanr(lag[ok], logs.loc[ok, "exposed"])[0] > 0.3
    again = simulate_promotion_logs(SMALL, seed=3)[0]
    pd.testing.assert_frame_equal(logs, again)


def test_malformed_rows_are_rejected_with_reasons(small_logs):
    logs = small_logs[0].copy()
    logs["category"] = logs["category"].astype(object)
    logs["period"] = logs["period"].astype(float)
    vids = logs["video_id"].unique()
    bad = {vids[0]: "negative_count", vids[1]: "direct_clicks_exceed_exposed", vids[2]: "missing_value",
           vids[3]: "inconsistent_category", vids[4]: "conflicting_duplicate", vids[5]: "bad_period"}
    row = {v: logs.index[logs["video_id"] == v][3] for v in bad}
    logs.loc[row[vids[0]], "exposed"] = -2
    logs.loc[row[vids[1]], "direct_clicks"] = logs.loc[row[vids[1]], "exposed"] + 1
    logs.loc[row[vids[2]], "category"] = None
    logs.loc[row[vids[3]], "category"] = "elsewhere"
    conflicting = logs.loc[[row[vids[4]]]].assign(indirect_clicks=10**5)
    logs.loc[row[vids[5]], "period"] = 2.5
    exact = logs.loc[[logs.index[logs["video_id"] == vids[6]][3]]]
    logs = pd.concat([logs, conflicting, exact], ignore_index=True)
    clean, rejected, summary = validate_promotion_logs(logs, 518_646)
    for vid, reason in bad.items():
        assert reason in set(rejected.loc[rejected["video_id"] == vid, "reason"]), reason
        assert vid not in set(clean["video_id"])
    assert vids[6] in set(clean["video_id"]) and summary["rows"]["duplicates"] == 1
    r = summary["rows"]
    assert r["read"] == r["accepted"] + r["rejected"] + r["duplicates"]
    assert summary["videos"]["dropped"] == len(bad)
    with pytest.raises(ValueError, match="exposed"):
        validate_promotion_logs(logs.drop(columns="exposed"), 518_646)


def test_a_video_whose_clicks_outgrow_the_market_is_refused_with_its_own_rows_and_counted():
    # market 10: video b's clicks add to 13 over its logged hours 0 and 2 (hour 1 absent, filled with zeros)
    logs = pd.DataFrame({"video_id": ["a", "a", "a", "b", "b", "b"], "category": "c",
                         "period": [0, 1, 2, 0, 2, 2], "exposed": [2, 1, 0, 4, 3, 3],
                         "direct_clicks": [1, 0, 0, 3, 2, 2], "indirect_clicks": [0, 1, 1, 4, 4, 4]})
    clean, rejected, summary = validate_promotion_logs(logs, 10)
    r = summary["rows"]
    assert (r["read"], r["accepted"], r["rejected"], r["duplicates"]) == (6, 3, 2, 1)
    assert r["read"] == r["accepted"] + r["rejected"] + r["duplicates"]
    assert summary["rejected_by_reason"] == {"cumulative_exceeds_market": 2}
    assert sorted(rejected["period"].tolist()) == [0, 2]          # the logged rows, not the filled hour 1
    assert rejected["video_id"].eq("b").all() and set(clean["video_id"]) == {"a"}
    assert summary["videos"] == {"read": 2, "accepted": 1, "dropped": 1}


def test_absent_hours_are_filled_with_zeros(small_logs):
    logs = small_logs[0]
    one = logs[logs["video_id"] == logs["video_id"].iloc[0]]
    holed = one[~one["period"].isin([0, 5, 6])]
    holed = holed.assign(exposed=np.where(holed["period"].isin([0, 5, 6]), 0, holed["exposed"]))
    clean, _, summary = validate_promotion_logs(holed, 518_646)
    assert list(clean["period"]) == list(range(one["period"].max() + 1))
    assert summary["rows"]["filled_empty_hours"] == 3
    assert (clean.loc[clean["period"].isin([0, 5, 6]), ["exposed", "direct_clicks", "indirect_clicks"]] == 0).all().all()


def test_group_closed_forms_equal_the_per_category_estimators(small_logs):
    logs, cats, _, meta = small_logs
    clean, _, _ = validate_promotion_logs(logs, meta["market"])
    panel = C.panel_from_logs(clean, meta["market"])
    stop = C.fit_end(panel, 0.6)
    obs, cat = C.window_rows(panel, 0, stop, 0.983, C.P_BDM)
    from reach.diffusion.estimators import d_ols, ols
    for method, fn in (("OLS", ols), ("D-OLS", d_ols)):
        p, q = C.estimate_categories(panel, 0, stop, 0.983, C.P_BDM, method)
        for k in range(panel.categories.size):
            e = fn(obs.subset(cat == k))
            assert (p[k], q[k]) == pytest.approx((e.p, e.q), rel=1e-9)


def test_forecast_with_true_parameters_on_noiseless_data_has_zero_wmape():
    m, n, T = 10_000, 5, 50
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.01, (n, T))
    path = simulate_pbdm(0.2, 0.05, m, x, gamma=0.98)
    clean = pd.DataFrame({"video_id": np.repeat(np.arange(n), T), "category": "c", "period": np.tile(np.arange(T), n),
                          "exposed": (x * m).ravel(), "direct_clicks": path.direct.ravel(),
                          "indirect_clicks": path.indirect.ravel()})
    clean["A_prev"] = path.A[:, :-1].ravel()
    panel = C.panel_from_logs(clean, m)
    stop = C.fit_end(panel, 0.6)
    w = C.evaluate(panel, [0.2], [0.05], 0.98, C.P_BDM, np.zeros(n, int), stop, panel.length)
    np.testing.assert_allclose(w, 0, atol=1e-9)


def test_calibration_recovers_truth_and_orders_models_as_the_paper(small_logs):
    logs, cats, _, meta = small_logs
    clean, _, _ = validate_promotion_logs(logs, meta["market"])
    panel = C.panel_from_logs(clean, meta["market"])
    cal = C.calibrate(panel, np.round(np.arange(0.975, 0.9901, 0.001), 4),
                      model_methods=((C.P_BDM, "D-OLS"), (C.P_BDM, "OLS"), (C.BDM, "OLS")))
    est = cal.estimates.query("model == 'P-BDM' and method == 'D-OLS'").merge(cats, on="category",
                                                                                 suffixes=("", "_true"))
    assert est["gamma"].iloc[0] == pytest.approx(0.983, abs=0.0021)
    np.testing.assert_allclose(est["p"], est["p_true"], rtol=0.03)
    np.testing.assert_allclose(est["q"], est["q_true"], rtol=0.1)
    w = cal.wmape.set_index("label")["wmape_mean"]
    assert w["P-BDM D-OLS"] <= w["P-BDM OLS"] < w["BDM OLS"]


def test_pq_correlation_test_matches_scipy():
    rng = np.random.default_rng(2)
    p = rng.normal(size=40)
    q = -0.5 * p + rng.normal(size=40)
    res = C.pq_correlation_test(p, q)
    ref = stats.pearsonr(p, q, alternative="less")
    assert res["pearson_r"] == pytest.approx(ref.statistic) and res["p_value_one_tailed"] == pytest.approx(ref.pvalue)
    assert res["critical_t_0.05"] == pytest.approx(-1.686, abs=1e-3)
