"""reach.promotion.tables (paper 2, Section 6.3): per-run totals, Table 1 with the improvement over NoD paired by
replicate, its markdown layout, the L sweep (Figures 5-6) and the (p, q) allocation (Figure 7), against figures
worked out by hand from small hand-made runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reach.promotion.tables import allocation_by_pq, l_sweep, run_totals, table1, table1_markdown

# total adoptions of each run (policy, c_bar, replicate); K = 3, L = 2
TOTALS = {("NoD", 1, 1): 100, ("NoD", 1, 2): 120, ("AGA", 1, 1): 150, ("AGA", 1, 2): 156,
          ("ATT", 1, 1): 110, ("ATT", 1, 2): 132,
          ("NoD", 2, 1): 200, ("NoD", 2, 2): 200, ("AGA", 2, 1): 300, ("AGA", 2, 2): 260,
          ("ATT", 2, 1): 220, ("ATT", 2, 2): 240}
PUBLISHED = pd.DataFrame({"c_bar": [1, 1, 1, 2, 2], "policy": ["NoD", "AGA", "ATT", "NoD", "AGA"],
                          "total_adoptions": [1000, 1500, 1200, 2000, 3000]})


def runs(totals=TOTALS, K=3, L=2):
    """Per-period and per-video frames as simulate_promotion writes them: two periods (direct 30% / 20%,
    the rest indirect, of the run's total) and three videos (adopters total - 15, 10, 5; AGA promotes two of
    them, the others one)."""
    periods, videos = [], []
    for (policy, c_bar, rep), total in totals.items():
        keys = {"policy": policy, "K": K, "L": L, "c_bar": c_bar, "replicate": rep}
        direct = [round(0.3 * total), round(0.2 * total)]
        indirect = [total - direct[0] - direct[1] - 7, 7]
        for t in range(2):
            periods.append({**keys, "period": t, "direct": direct[t], "indirect": indirect[t]})
        promoted = [2, 1, 0] if policy == "AGA" else [3, 0, 0]
        for v, (a, pp) in enumerate(zip([total - 15, 10, 5], promoted)):
            videos.append({**keys, "video": v, "adopters": a, "promoted_periods": pp, "p": 0.1 * (v + 1),
                           "q": 0.05 * (3 - v), "born": 0, "promoted_impressions": 10.0 * pp})
    return pd.DataFrame(periods), pd.DataFrame(videos)


def test_run_totals_add_up_each_run():
    periods, videos = runs()
    out = run_totals(periods, videos).set_index(["policy", "c_bar", "replicate"])
    assert len(out) == len(TOTALS)
    for key, total in TOTALS.items():
        row = out.loc[key]
        assert row["total"] == total
        assert row["direct"] == round(0.3 * total) + round(0.2 * total)
        assert row["direct"] + row["indirect"] == total
        assert row["promoted_videos"] == (2 if key[0] == "AGA" else 1)


def test_table1_pairs_each_replicate_with_its_nod_run_and_sits_beside_the_paper():
    periods, videos = runs()
    tab = table1(periods, videos, PUBLISHED)
    assert list(zip(tab["c_bar"], tab["policy"])) == [(1, "NoD"), (1, "AGA"), (1, "ATT"),
                                                      (2, "NoD"), (2, "AGA"), (2, "ATT")]
    t = tab.set_index(["c_bar", "policy"])
    # AGA at c_bar 1: 150 / 100 - 1 = 0.5 and 156 / 120 - 1 = 0.3 (not 153 / 110 - 1 = 0.391 of the means)
    assert t.loc[(1, "AGA"), "improvement_mean"] == pytest.approx(0.4)
    assert t.loc[(1, "AGA"), "improvement_sd"] == pytest.approx(np.sqrt(0.02))
    assert t.loc[(1, "ATT"), "improvement_mean"] == pytest.approx(0.1)
    assert t.loc[(1, "ATT"), "improvement_sd"] == pytest.approx(0.0, abs=1e-12)
    assert t.loc[(2, "ATT"), "improvement_mean"] == pytest.approx(0.15)
    assert (t.xs("NoD", level="policy")["improvement_mean"] == 0).all()
    assert t.loc[(1, "AGA"), "total_mean"] == 153 and t.loc[(1, "AGA"), "total_sd"] == pytest.approx(np.sqrt(18))
    assert t.loc[(2, "AGA"), "direct_mean"] == (150 + 130) / 2
    assert (t["replicates"] == 2).all()
    assert t.loc[(1, "AGA"), "paper_total"] == 1500 and t.loc[(1, "AGA"), "paper_improvement"] == pytest.approx(0.5)
    assert t.loc[(1, "ATT"), "paper_improvement"] == pytest.approx(0.2)
    assert np.isnan(t.loc[(2, "ATT"), "paper_total"])                       # not published: left empty
    assert "paper_total" not in table1(periods, videos).columns


def test_table1_markdown_lays_budgets_out_in_rows():
    periods, videos = runs()
    md = table1_markdown(table1(periods, videos, PUBLISHED)).splitlines()
    assert md[0] == "| C-bar | NoD | AGA | ATT |"
    assert md[1] == "|---|---|---|---|"
    assert md[2] == ("| 1 | 110 ± 14<br>(paper 1,000) | 153 ± 4<br>+40.0%<br>(paper 1,500, +50.0%) "
                     "| 121 ± 16<br>+10.0%<br>(paper 1,200, +20.0%) |")
    assert md[3] == ("| 2 | 200 ± 0<br>(paper 2,000) | 280 ± 28<br>+40.0%<br>(paper 3,000, +50.0%) "
                     "| 230 ± 14<br>+15.0% |")
    one = {k: v for k, v in TOTALS.items() if k[2] == 1}                    # one replicate: no spread shown
    single = table1_markdown(table1(*runs(one))).splitlines()
    assert single[2] == "| 1 | 100 | 150<br>+50.0% | 110<br>+10.0% |"


def test_l_sweep_averages_replicates_per_k_l_and_budget():
    frames = [runs({("AGA", 2, 1): 300, ("AGA", 2, 2): 260}, K=K, L=L) for K, L in [(3, 1), (3, 4), (5, 4)]]
    extra = runs({("AGA", 2, 3): 500}, K=5, L=4)                        # a third replicate at (5, 4)
    periods = pd.concat([f[0] for f in frames] + [extra[0]], ignore_index=True)
    videos = pd.concat([f[1] for f in frames] + [extra[1]], ignore_index=True)
    sweep = l_sweep(periods, videos).set_index(["K", "L"])
    assert list(sweep.index) == [(3, 1), (3, 4), (5, 4)]
    assert sweep.loc[(3, 1), "total"] == 280 and sweep.loc[(3, 4), "promoted_videos"] == 2
    assert sweep.loc[(5, 4), "total"] == pytest.approx((300 + 260 + 500) / 3)
    assert sweep.loc[(5, 4), "direct"] == pytest.approx((150 + 130 + 250) / 3)


def test_allocation_by_pq_bins_quartiles_per_policy_and_l():
    # 16 videos: p and q each take four levels (quartiles of 4 videos), promoted periods set by the cell
    p = np.repeat([0.1, 0.2, 0.3, 0.4], 4)
    q = np.tile([0.01, 0.02, 0.03, 0.04], 4)
    promoted = (10 * np.repeat(np.arange(4), 4) + np.tile(np.arange(4), 4)).astype(float)
    videos = pd.DataFrame({"policy": "AGA", "K": 50, "L": 13, "c_bar": 6, "replicate": 1, "video": np.arange(16),
                           "p": p, "q": q, "promoted_periods": promoted})
    videos = pd.concat([videos, videos.assign(policy="ATT", promoted_periods=0.0)], ignore_index=True)
    out = allocation_by_pq(videos)
    assert len(out) == 2 * 16 and (out["videos"] == 1).all()
    aga = out[out["policy"] == "AGA"].set_index(["p_bin", "q_bin"])
    for i in range(4):
        for j in range(4):
            assert aga.loc[(i, j), "promoted_periods"] == 10 * i + j
            assert aga.loc[(i, j), "p"] == pytest.approx(0.1 * (i + 1))
            assert aga.loc[(i, j), "q"] == pytest.approx(0.01 * (j + 1))
    assert (out.loc[out["policy"] == "ATT", "promoted_periods"] == 0).all()
    coarse = allocation_by_pq(videos[videos["policy"] == "AGA"], bins=2).set_index(["p_bin", "q_bin"])
    # the low-p, low-q half-cell holds p in {0.1, 0.2} and q in {0.01, 0.02}: promoted 0, 1, 10, 11
    assert coarse.loc[(0, 0), "promoted_periods"] == pytest.approx(5.5) and coarse.loc[(0, 0), "videos"] == 4
    # a run given twice (Table 1's AGA runs are in the L sweep too) counts once; other K and budgets stay apart
    aga_run = videos[videos["policy"] == "AGA"]
    again = allocation_by_pq(pd.concat([aga_run, aga_run, aga_run.assign(K=30, promoted_periods=99.0),
                                        aga_run.assign(c_bar=2, promoted_periods=77.0)], ignore_index=True))
    k50 = again[(again["K"] == 50) & (again["c_bar"] == 6)].set_index(["p_bin", "q_bin"])
    assert (k50["videos"] == 1).all() and (k50["runs"] == 1).all()
    assert k50.loc[(2, 3), "promoted_periods"] == 23
    assert (again.loc[again["K"] == 30, "promoted_periods"] == 99).all()
    assert (again.loc[again["c_bar"] == 2, "promoted_periods"] == 77).all()
