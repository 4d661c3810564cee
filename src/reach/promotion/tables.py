"""Tables and figures of paper 2, Section 6.3, from platform runs (one row per period / per video)."""

from __future__ import annotations

import numpy as np
import pandas as pd

RUN_KEYS = ["policy", "K", "L", "c_bar", "replicate"]


def run_totals(periods: pd.DataFrame, videos: pd.DataFrame) -> pd.DataFrame:
    """One row per run: total, direct and indirect adoptions and the number of videos ever promoted."""
    per = periods.groupby(RUN_KEYS)[["direct", "indirect"]].sum()
    vid = videos.groupby(RUN_KEYS).agg(total=("adopters", "sum"),
                                       promoted_videos=("promoted_periods", lambda s: int((s > 0).sum())))
    out = per.join(vid).reset_index()
    return out


def table1(periods: pd.DataFrame, videos: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 1: total adoptions by budget and policy (mean and sd over replicates), improvement over NoD
    (computed per replicate, on the same arrivals), and the paper's figures beside ours."""
    runs = run_totals(periods, videos)
    nod = runs[runs["policy"] == "NoD"].set_index(["K", "L", "c_bar", "replicate"])["total"]
    runs["improvement_over_nod"] = runs["total"].to_numpy() / \
        nod.reindex(pd.MultiIndex.from_frame(runs[["K", "L", "c_bar", "replicate"]])).to_numpy() - 1
    tab = runs.groupby(["c_bar", "policy"]).agg(
        total_mean=("total", "mean"), total_sd=("total", "std"), direct_mean=("direct", "mean"),
        indirect_mean=("indirect", "mean"), improvement_mean=("improvement_over_nod", "mean"),
        improvement_sd=("improvement_over_nod", "std"), replicates=("total", "size")).reset_index()
    if published is not None:
        pub = published.copy()
        base = pub[pub["policy"] == "NoD"].set_index("c_bar")["total_adoptions"]
        pub["paper_improvement"] = pub["total_adoptions"] / pub["c_bar"].map(base) - 1
        tab = tab.merge(pub.rename(columns={"total_adoptions": "paper_total"}), on=["c_bar", "policy"], how="left")
    order = {p: i for i, p in enumerate(["NoD", "AGA", "ATT", "TIM", "POT"])}
    return tab.sort_values(["c_bar", "policy"], key=lambda s: s.map(order) if s.name == "policy" else s) \
        .reset_index(drop=True)


def table1_markdown(tab: pd.DataFrame) -> str:
    """Table 1 laid out as in the paper: budgets in rows, policies in columns, improvement under each total."""
    policies = [p for p in ["NoD", "AGA", "ATT", "TIM", "POT"] if p in set(tab["policy"])]
    lines = ["| C-bar | " + " | ".join(policies) + " |", "|---" * (len(policies) + 1) + "|"]
    for c_bar, g in tab.groupby("c_bar"):
        g = g.set_index("policy")
        cells = []
        for p in policies:
            r = g.loc[p]
            sd = f" ± {r['total_sd']:,.0f}" if np.isfinite(r["total_sd"]) else ""
            imp = "" if p == "NoD" else f"<br>{100 * r['improvement_mean']:+.1f}%"
            paper = ""
            if "paper_total" in g.columns and np.isfinite(r.get("paper_total", np.nan)):
                paper = f"<br>(paper {r['paper_total']:,.0f}" + \
                    ("" if p == "NoD" else f", {100 * r['paper_improvement']:+.1f}%") + ")"
            cells.append(f"{r['total_mean']:,.0f}{sd}{imp}{paper}")
        lines.append(f"| {c_bar:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def l_sweep(periods: pd.DataFrame, videos: pd.DataFrame) -> pd.DataFrame:
    """Figures 5-6: total, direct and indirect adoptions and unique promoted videos by (K, L)."""
    runs = run_totals(periods, videos)
    return runs.groupby(["K", "L", "c_bar"])[["total", "direct", "indirect", "promoted_videos"]].mean().reset_index()


RUN_KEYS = ["policy", "K", "L", "c_bar", "replicate"]


def allocation_by_pq(videos: pd.DataFrame, bins: int = 4) -> pd.DataFrame:
    """Figure 7: average promotion periods by (p, q) quartile cell, per policy, candidate set size K, budget c_bar and
    planning interval L (the paper fixes K = 50). A run given twice (Table 1's runs are also in the L sweep) counts
    once; `runs` is the number of runs (replicates) behind each cell."""
    v = videos.drop_duplicates([*RUN_KEYS, "video"]).copy()
    v["p_bin"] = pd.qcut(v["p"], bins, labels=False, duplicates="drop")
    v["q_bin"] = pd.qcut(v["q"], bins, labels=False, duplicates="drop")
    return v.groupby(["policy", "K", "c_bar", "L", "p_bin", "q_bin"]).agg(
        p=("p", "mean"), q=("q", "mean"), promoted_periods=("promoted_periods", "mean"),
        videos=("video", "size"), runs=("replicate", "nunique")).reset_index()
