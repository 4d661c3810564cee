"""Coverage of CF-IV's 95% FEI bands (members alone, + smoothing bias, + width from simulated data sets) on designs
with a known truth.

The workflow's bands (rule fei_tables) are percentile bootstraps over the videos and the ensemble members; with
causal.band_bias_draws > 0, each bootstrap replicate also adds one draw of its member's smoothing bias (the ridge's
prior-expected squared bias, reach.causal.control_function.smoothing_bias_cov; Nychka 1988). This benchmark fits the
ensemble the workflow fits (members on bootstrap resamples, each choosing its penalty, components and scaling on its
out-of-bag rows), builds both bands with reach.causal.fei.bootstrap_mean_curve, and prints, per seed and in the mean,
the share of the grid (1st-99th percentile of t) where each band covers the true average FEI, the band's mean width
and the curve's error. On three_group also per group (the per-campaign curves of Table 4 in miniature). Then where
the under-coverage comes from: per grid point, the estimate's error across seeds splits into its mean (the bias) and
its standard deviation (the sampling spread over datasets), set beside the band's implied standard deviation (half
its width / 1.96); a band whose implied sd falls short of the spread over datasets is too narrow, not off-centre.
The third band: the sampling part widened by band_width_factor, from `--sets` data sets drawn from a CF-IV fit on
all rows (simulate_from_fit) and fitted as members are (column factor). The fourth, the workflow's default: the same
band moved onto that fit on all rows, the point estimate (causal.point_estimate all_rows).

    .venv/bin/python benchmarks/band_coverage.py [--design three_group] [--n 6000] [--seeds 6] [--members 10] [--sets 16]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from reach.causal.control_function import ControlFunctionConfig, fit_control_function, simulate_from_fit
from reach.causal.fei import band_width_factor, bootstrap_mean_curve, fei_central_difference
from reach.causal.iv_designs import DESIGNS


def ensemble(data, members: int, seed: int, grid: np.ndarray, epsilon: float, bias_draws: int,
             group_copies: bool = True):
    rng = np.random.default_rng([seed, 17])
    curves, bias_rows, bias_deltas = [], [], []
    n = data.t.size
    for m in range(members):
        rows = rng.integers(0, n, n)
        oob = np.setdiff1d(np.arange(n), rows)
        model = fit_control_function(data.t[rows], data.z[rows], data.x[rows], data.y[rows],
                                     ControlFunctionConfig(seed=seed * 1000 + m),
                                     validation=(data.t[oob], data.z[oob], data.x[oob], data.y[oob]),
                                     groups=rows if group_copies else None)
        curves.append(fei_central_difference(lambda lv: model.predict_grid(lv, data.x), grid, epsilon)[1])
        r, d = model.smoothing_bias_draws(grid, data.x, epsilon, bias_draws, seed * 1000 + m)
        bias_rows.append(r)
        bias_deltas.append(d)
    width = max(r.shape[1] for r in bias_rows)
    bias = (np.stack([np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r in bias_rows]),
            np.stack([np.pad(d, ((0, 0), (0, width - d.shape[1]), (0, 0))) for d in bias_deltas]))
    return np.stack(curves), bias


def simulated_fits(data, sets: int, seed: int, grid: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """The workflow's width calibration (rule simulate_band_sets): one CF-IV fit on all rows (cross-validated), then
    `sets` data sets drawn from it (simulate_from_fit), each fitted as a member is; their FEI curves (sets x rows x
    grid) on the data's rows, and the fit's own curves (rows x grid: the workflow's point estimate, causal.point_estimate
    all_rows)."""
    n = data.t.size
    base = fit_control_function(data.t, data.z, data.x, data.y, ControlFunctionConfig(seed=seed * 1000 + 900))
    rng = np.random.default_rng([seed, 23])
    curves = []
    for k in range(sets):
        t_star, y_star = simulate_from_fit(base, data.t, data.x, data.y, rng)
        rows = rng.integers(0, n, n)
        oob = np.setdiff1d(np.arange(n), rows)
        model = fit_control_function(t_star[rows], data.z[rows], data.x[rows], y_star[rows],
                                     ControlFunctionConfig(seed=seed * 1000 + 500 + k),
                                     validation=(t_star[oob], data.z[oob], data.x[oob], y_star[oob]), groups=rows)
        curves.append(fei_central_difference(lambda lv: model.predict_grid(lv, data.x), grid, epsilon)[1])
    return np.stack(curves), fei_central_difference(lambda lv: base.predict_grid(lv, data.x), grid, epsilon)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--design", default="three_group", choices=sorted(DESIGNS))
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--n-boot", type=int, default=400)
    ap.add_argument("--bias-draws", type=int, default=32)
    ap.add_argument("--epsilon", type=float, default=0.05)
    ap.add_argument("--sets", type=int, default=16, help="data sets simulated from the fit for the band's width")
    ap.add_argument("--split-copies", action="store_true",
                    help="let a resample's copies of a row fall in different cross-fitting folds (the code before)")
    args = ap.parse_args()
    design = DESIGNS[args.design]()
    rows = []
    for seed in range(args.seeds):
        data = design.simulate(args.n, seed)
        grid = np.linspace(*np.quantile(data.t, [0.01, 0.99]), 41)
        truth = np.stack([design.truth_derivative(np.full(data.t.size, g), data.x) for g in grid], axis=1)
        curves, bias = ensemble(data, args.members, seed, grid, args.epsilon, args.bias_draws,
                               group_copies=not args.split_copies)
        sims, point = simulated_fits(data, args.sets, seed, grid, args.epsilon) if args.sets > 1 else (None, None)
        groups = {"all": np.arange(data.t.size)}
        if design.groups is not None:
            labels = design.groups(data.x)
            groups |= {f"group {k}": np.flatnonzero(labels == k) for k in np.unique(labels)}
        for name, idx in groups.items():
            true_mean = truth[idx].mean(axis=0)
            factor = band_width_factor(curves, sims, rows=idx) if sims is not None else 1.0
            bands = [("bootstrap", None, 1.0, None), ("bootstrap + smoothing bias", bias, 1.0, None)]
            if sims is not None:
                bands.append(("+ width from simulated data sets", bias, factor, None))
                bands.append(("+ centred on the fit on all rows", bias, factor, point))
            for band_name, b, f, centre in bands:
                band = bootstrap_mean_curve(curves, args.n_boot, seed, rows=idx, bias=b, width_factor=f, point=centre)
                covered = (band["lower"] <= true_mean) & (true_mean <= band["upper"])
                rows.append({"seed": seed, "curve": name, "band": band_name, "factor": f,
                             "coverage": float(covered.mean()),
                             "width": float((band["upper"] - band["lower"]).mean()),
                             "mae": float(np.abs(band["estimate"] - true_mean).mean()),
                             "error": (band["estimate"] - true_mean).to_numpy(),
                             "implied_sd": ((band["upper"] - band["lower"]) / (2 * 1.959964)).to_numpy()})
        print(pd.DataFrame([{k: v for k, v in r.items() if k not in ("error", "implied_sd")} for r in rows
                            if r["seed"] == seed]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows).groupby(["curve", "band"])[["coverage", "width", "mae", "factor"]].mean()
    wide = table.unstack("band")
    ratio = wide[("width", "bootstrap + smoothing bias")] / wide[("width", "bootstrap")]
    print(f"\n{args.design}, n = {args.n}, {args.seeds} seeds, {args.members} members (mean over seeds; nominal 0.95):")
    print(table.round(3).to_string())
    print("\nwidth ratio (with / without the smoothing-bias term):")
    print(ratio.round(2).to_string())
    if args.seeds > 1:
        split = []
        for (name, band_name), g in pd.DataFrame(rows).groupby(["curve", "band"]):
            errors, implied = np.stack(g["error"].to_list()), np.stack(g["implied_sd"].to_list())
            spread = errors.std(axis=0, ddof=1).mean()
            split.append({"curve": name, "band": band_name, "|mean error| (bias)": np.abs(errors.mean(axis=0)).mean(),
                          "sd of the error over seeds": spread, "band's implied sd": implied.mean(),
                          "sd ratio (over seeds / band)": spread / implied.mean()})
        print(f"\nwhere the under-coverage comes from (per grid point, averaged over the grid; {args.seeds} seeds):")
        print(pd.DataFrame(split).set_index(["curve", "band"]).round(4).to_string())


if __name__ == "__main__":
    main()
