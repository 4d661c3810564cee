"""How well can campaign FEI curves be recovered at all? Identification / power check behind issue 5's truth targets.

The workflow's truth check (results/causal/truth_check.csv) asks that each sponsored campaign's six tier-average FEIs
(Table 4) be within 0.07 of the truth on average and that >= 80% of campaigns get the true curve shape. This
benchmark separates "the estimator falls short" from "the data cannot tell": on worlds drawn by the simulator
(reach.synthetic.world, no media) it scores, against the simulator's true FEI,

  deepiv <variant>  our Deep IV (DeepIVConfig as in workflow_config.yaml, with each variant's overrides; by default
                    "dense", the config as is, and "spline", the varying-coefficient response with dropout 0 and L2
                    1e-4 on h) with an *oracle* x: the true content latent (what r can at best carry), the post
                    statistics and hashtag indicators; z = the creator's past hearts level (the quantity ingestion
                    estimates from post lists)
  direct+confounder the same response network fitted by direct regression with the *unobserved confounder added to
                    x* — infeasible: no IV problem left, only the sample size and the network
  spline+confounder per campaign, OLS of log impressions on a cubic B-spline in log followers (df 4) plus the true
                    content and the true confounder — infeasible, correctly specified up to the spline

for the default world and for worlds with larger campaigns (world.campaign_size_factor) and less noise in log
impressions (world.impressions_noise_sd). If even the infeasible estimators miss 0.07 at the default world, the
target asks more than the default world's ~100 videos per campaign can support.

    .venv/bin/python benchmarks/fei_identification.py [--scenarios 1:0.6 3:0.6 3:0.3 10:0.6] [--seeds 1]
        [--deepiv NAME='{"response": "spline"}' ...] [--no-infeasible]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from _variants import named_json

from reach.causal.control_function import ControlFunctionConfig, fit_control_function
from reach.causal.deepiv import DeepIVConfig, fit_deepiv, fit_direct
from reach.causal.fei import classify_curve_shape, fei_central_difference, tier_averages
from reach.synthetic.fei import fei_curve
from reach.synthetic.world import WorldSpec, simulate

ROOT = Path(__file__).resolve().parents[1]
POST = ["rank", "has_fyp", "num_trending", "is_trending", "is_verified", "is_sponsored", "hashtag_age",
        "num_hashtags", "duration"]


DEFAULT_DEEPIV = {"dense": {}, "spline": {"response": "spline", "dropout": 0.0, "response_weight_decay": 1e-4}}


def _score(fei: np.ndarray, true_fei: np.ndarray, grid: np.ndarray, videos: pd.DataFrame) -> dict:
    errors, hits = [], []
    for tag in sorted(videos.loc[videos["campaign_type"] != "organic", "hashtag"].unique()):
        rows = (videos["hashtag"] == tag).to_numpy()
        est = tier_averages(fei[rows].mean(axis=0), grid)[0]
        true = tier_averages(true_fei[rows].mean(axis=0), grid)[0]
        errors.append(np.nanmean(np.abs(est - true)))
        hits.append(classify_curve_shape(est) == videos.loc[rows, "campaign_type"].iloc[0])
    lo, hi = np.percentile(videos["log_followers"], [1, 99])
    support = (grid >= lo) & (grid <= hi)
    t = videos["log_followers"].to_numpy(float)
    at_own = np.array([np.interp(a, grid, row) for a, row in zip(t, fei)])
    true_own = np.array([np.interp(a, grid, row) for a, row in zip(t, true_fei)])
    ok = np.isfinite(at_own)
    return {"campaign_tier_mae": float(np.mean(errors)), "shape_accuracy": float(np.mean(hits)),
            "average_fei_mae": float(np.abs(fei.mean(axis=0) - true_fei.mean(axis=0))[support].mean()),
            "video_fei_corr": float(np.corrcoef(at_own[ok], true_own[ok])[0, 1])}


def _spline_fei(videos: pd.DataFrame, controls: np.ndarray, grid: np.ndarray, df: int = 4) -> np.ndarray:
    """Per-campaign spline FEI (rows of non-campaign videos stay NaN; they are not scored)."""
    import statsmodels.api as sm
    from patsy import build_design_matrices, dmatrix

    out = np.full((len(videos), grid.size), np.nan)
    for tag in videos.loc[videos["campaign_type"] != "organic", "hashtag"].unique():
        rows = (videos["hashtag"] == tag).to_numpy()
        t = videos["log_followers"].to_numpy()[rows]
        lo, hi = float(t.min()), float(t.max())
        basis = dmatrix(f"bs(l, df={df}, degree=3, lower_bound={lo}, upper_bound={hi})", {"l": t},
                        return_type="dataframe")
        fit = sm.OLS(videos["log_impressions"].to_numpy()[rows], np.column_stack([basis, controls[rows]])).fit()
        coef = np.asarray(fit.params)[: basis.shape[1]]

        def h(levels: np.ndarray) -> np.ndarray:
            (d,) = build_design_matrices([basis.design_info], {"l": np.clip(levels, lo, hi)})
            return np.asarray(d) @ coef

        inner = np.clip(grid, lo + 0.05, hi - 0.05)
        out[rows] = (h(inner + 0.05) - h(inner - 0.05)) / 0.1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", nargs="+", default=["1:0.6", "3:0.6", "3:0.3"],
                    help="campaign_size_factor:impressions_noise_sd pairs (1:0.6 is the default world)")
    ap.add_argument("--seeds", type=int, default=1, help="world seeds per scenario (from the config's seed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--deepiv", action="append", default=[], type=named_json,
                    help="NAME=JSON of DeepIVConfig overrides (repeatable); default: "
                         + "; ".join(f"{k}={json.dumps(v)}" for k, v in DEFAULT_DEEPIV.items()))
    ap.add_argument("--no-infeasible", action="store_true", help="skip the two estimators handed the confounder")
    ap.add_argument("--no-cfiv", action="store_true", help="skip the control-function IV (series)")
    ap.add_argument("--world", default="{}", type=json.loads,
                    help='JSON of world-block overrides for every scenario, e.g. \'{"n_hashtags": 21}\'')
    args = ap.parse_args()
    variants = dict(args.deepiv) or dict(DEFAULT_DEEPIV)
    variants = {k: v for k, v in variants.items() if k != "none"}   # --deepiv none=... skips Deep IV
    config = yaml.safe_load((ROOT / "workflow_config.yaml").read_text())
    deepiv_cfg = dict(config["causal"]["deepiv"])
    g = config["follower_grid"]
    grid = np.linspace(np.log(g["min_followers"]), np.log(g["max_followers"]), int(g["n"]))
    base_spec = {k: v for k, v in {**config["world"], **args.world}.items() if k in WorldSpec.__dataclass_fields__}
    rows = []
    for scenario in args.scenarios:
        factor, noise = (float(v) for v in scenario.split(":"))
        for k in range(args.seeds):
            seed = int(config["seed"]) + k
            world = simulate(WorldSpec(**{**base_spec, "seed": seed, "campaign_size_factor": factor,
                                          "impressions_noise_sd": noise}))
            v = world.videos
            t, y = v["log_followers"].to_numpy(float), v["log_impressions"].to_numpy(float)
            z = world.creators["log_past_hearts_level"].to_numpy()[v["creator"].to_numpy()]
            content = v[[c for c in v.columns if c.startswith("content_")]].to_numpy(float)
            post = v[POST].astype(float).to_numpy()
            post[:, 0] = np.log(post[:, 0])
            x = np.column_stack([content, post, pd.get_dummies(v["hashtag"]).to_numpy(float)])
            confounder = v["confounder"].to_numpy(float)
            true_fei = fei_curve(world.fei_params, grid)
            n_campaign = int((v["campaign_type"] != "organic").sum())
            cfg = DeepIVConfig(**deepiv_cfg, seed=seed, threads=args.threads)
            fits = {}
            for name, overrides in variants.items():
                tic = time.perf_counter()
                model = fit_deepiv(t, z, x, y, DeepIVConfig.from_json({**cfg.to_json(), **overrides}))
                fits[f"deepiv {name}"] = (fei_central_difference(lambda lv: model.predict_grid(lv, x), grid, 0.05)[1],
                                          time.perf_counter() - tic)
            if not args.no_cfiv:
                tic = time.perf_counter()
                cf = fit_control_function(t, z, x, y, ControlFunctionConfig(**{**config["causal"].get("cfiv", {}),
                                                                                "seed": seed}))
                fits["cfiv"] = (fei_central_difference(lambda lv: cf.predict_grid(lv, x), grid, 0.05)[1],
                                time.perf_counter() - tic)
            if not args.no_infeasible:
                fits |= _infeasible(t, x, y, v, content, confounder, grid, cfg)
            for name, (fei, seconds) in fits.items():
                scores = _score(fei, true_fei, grid, v)
                if name.startswith("spline"):
                    scores["average_fei_mae"] = np.nan   # per-campaign fits only
                rows.append({"campaign_size_factor": factor, "noise_sd": noise, "seed": seed, "videos": len(v),
                             "campaign_videos": n_campaign, "method": name, **scores, "seconds": seconds})
                print(f"factor {factor:g} noise {noise:g} seed {seed}: {name:18s} tier MAE "
                      f"{scores['campaign_tier_mae']:.3f} shapes {scores['shape_accuracy']:.2f} average MAE "
                      f"{scores['average_fei_mae']:.3f} video corr {scores['video_fei_corr']:.2f} ({seconds:.0f} s)",
                      flush=True)
    _summarise(pd.DataFrame(rows))


def _infeasible(t, x, y, v, content, confounder, grid, cfg) -> dict:
    """The two estimators that are handed the unobserved confounder (see the module doc)."""
    xc = np.column_stack([x, confounder])
    tic = time.perf_counter()
    model = fit_direct(t, xc, y, cfg)
    fits = {"direct+confounder": (fei_central_difference(lambda lv: model.predict_grid(lv, xc), grid, 0.05)[1],
                                  time.perf_counter() - tic)}
    tic = time.perf_counter()
    fits["spline+confounder"] = (_spline_fei(v, np.column_stack([content, confounder]), grid), time.perf_counter() - tic)
    return fits


def _summarise(table: pd.DataFrame) -> None:
    summary = table.groupby(["campaign_size_factor", "noise_sd", "method"], sort=False)[
        ["campaign_videos", "campaign_tier_mae", "shape_accuracy", "average_fei_mae", "video_fei_corr"]].mean()
    print("\nmean over seeds (targets: campaign tier MAE <= 0.07, shape accuracy >= 0.8)")
    print(summary.to_string(float_format=lambda f: f"{f:.3f}"))
    default = table[(table["campaign_size_factor"] == 1.0) & (table["noise_sd"] == 0.6)]
    if not default.empty:
        best = default.groupby("method")["campaign_tier_mae"].mean().min()
        print(f"\ndefault world: best infeasible/oracle campaign tier MAE {best:.3f} = {best / 0.07:.2f} x the 0.07 target")


if __name__ == "__main__":
    main()
