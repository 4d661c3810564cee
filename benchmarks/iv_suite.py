"""IV benchmark suite: every design x method, mean and spread over seeds, in one run.

Designs (reach.causal.iv_designs, reach.causal.demand):
  demand_n1000 / demand_n5000 / demand_n20000  Hartford et al. (2017) airline demand, rho = 0.5 (scored on their
        protocol's test set: fresh (time, type), prices on an even grid; standardised scale)
  deepgmm_sin / deepgmm_abs / deepgmm_step     Bennett, Kallus & Schnabel (2019) low-dimensional designs, n = 2,000
  heteroskedastic   deepgmm sin with a first-stage error whose scale moves with z (breaks the control function's
                    triangular assumption; Deep IV's moment condition still holds), n = 2,000
  three_group       paper 1 in miniature: the t-shape of h (S-shaped / linear / concave FEI) set by a covariate
                    group, n = 6,000 (2,000 per group, the paper's campaign size), scored per group on the group's
                    average dh/dt curve against its peak derivative
Methods (all fitted on the same rows; nothing is tuned on the truth — CF-IV picks its penalty and components by
cross-validated held-out loss, polynomial 2SLS its degree by held-out projected loss, Deep IV early-stops on held-out
rows):
  auto      the workflow's default (causal.estimator: auto): CF-IV and Deep IV each fitted on 80% of the rows and
            judged by the causal validation loss on the other 20% (held-out (y - E_F[h | z, x])^2, Hartford et al.
            2017), paired by row: the lower unless CF-IV is within one standard error
            (reach.causal.estimator.choose_estimator); the chosen one refitted on all rows; "chosen" names it
  cfiv      control-function IV, series (reach.causal.control_function)
  deepiv    Deep IV with the workflow's causal.deepiv settings (paper 1's estimator)
  direct    direct (non-IV) regression with Deep IV's response network (biased under confounding)
  2sls      linear 2SLS: h = [1, t, x], instruments [1, z, x]
  poly2sls  2SLS on a polynomial sieve of degree k in t with t^j x interactions (instruments the same in z),
            k in 1..5 chosen on 20% held-out rows
  constant  the training mean of y
Scores: h_mse (test rows), dh_mae (derivative by central differences over the 1st-99th percentile of t) and, for
three_group, per group the curve error of dh/dt and its ratio to the group's peak derivative (target <= 0.10).

    .venv/bin/python benchmarks/iv_suite.py [--seeds 3] [--designs ...] [--methods ...] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from reach.causal.control_function import ControlFunctionConfig, fit_control_function
from reach.causal.deepiv import DeepIVConfig, fit_deepiv, fit_direct
from reach.causal.demand import demand_test_set, simulate_demand, structural_g
from reach.causal.estimator import choose_estimator
from reach.causal.iv_designs import DESIGNS, GROUPS, IVData, IVDesign, derivative_errors

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("cfiv", "deepiv", "auto", "direct", "2sls", "poly2sls", "constant")
SIZES = {"demand_n1000": 1000, "demand_n5000": 5000, "demand_n20000": 20000, "deepgmm_sin": 2000,
         "deepgmm_abs": 2000, "deepgmm_step": 2000, "heteroskedastic": 2000, "three_group": 6000}


def _demand_design() -> IVDesign:
    def h(t, x):
        return structural_g(t, x[:, 0], x[:, 1:] @ np.arange(1, 8))

    def dh(t, x, eps=1e-3):
        return (h(np.asarray(t) + eps, x) - h(np.asarray(t) - eps, x)) / (2 * eps)

    def simulate(n, seed):
        d = simulate_demand(n, 0.5, seed)
        return IVData(d.t, d.z, d.x, d.y, h(d.t, d.x))

    return IVDesign("demand", simulate, h, dh)


def _sieve(t, x, k):
    cols = [np.ones_like(t)] + [t ** j for j in range(1, k + 1)] + [x] + [x * (t ** j)[:, None] for j in range(1, k)]
    return np.column_stack(cols)


def fit_poly2sls(d: IVData, seed: int, max_degree: int = 5):
    """2SLS on the polynomial sieve; degree chosen by the held-out loss of y against the projected sieve."""
    z = d.z if d.z.ndim == 2 else d.z[:, None]
    zbar = z[:, 0]
    rng = np.random.default_rng([seed, 11])
    val = rng.random(d.t.size) < 0.2

    def instruments(rows, k):
        extra = [z[rows, 1:]] if z.shape[1] > 1 else []
        return np.column_stack([_sieve(zbar[rows], d.x[rows], k), *extra])

    def fit(rows, k):
        h_basis, w = _sieve(d.t[rows], d.x[rows], k), instruments(rows, k)
        pi = np.linalg.lstsq(w, h_basis, rcond=None)[0]
        b = np.linalg.lstsq(w @ pi, d.y[rows], rcond=None)[0]
        return b, pi

    losses = {}
    for k in range(1, max_degree + 1):
        b, pi = fit(~val, k)
        losses[k] = float(np.mean((d.y[val] - instruments(val, k) @ pi @ b) ** 2))
    k = min(losses, key=losses.get)
    b, _ = fit(np.ones(d.t.size, bool), k)
    predict = lambda t, x: _sieve(np.asarray(t, float), x, k) @ b  # noqa: E731
    return predict, k


def fit_2sls(d: IVData):
    z = d.z if d.z.ndim == 2 else d.z[:, None]
    h_basis, w = np.column_stack([np.ones_like(d.t), d.t, d.x]), np.column_stack([np.ones_like(d.t), z, d.x])
    pi = np.linalg.lstsq(w, h_basis, rcond=None)[0]
    b = np.linalg.lstsq(w @ pi, d.y, rcond=None)[0]
    return lambda t, x: np.column_stack([np.ones_like(t), t, x]) @ b


def _grid_of(predict):
    return lambda grid, x: np.stack([predict(np.full(x.shape[0], g), x) for g in grid], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--designs", nargs="+", default=list(SIZES))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", default=None, help="also write every (design, seed, method) row here, as it goes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "workflow_config.yaml").read_text())
    deepiv_cfg = {**config["causal"]["deepiv"], "device": "cpu", "threads": args.threads}
    cfiv_cfg = dict(config["causal"].get("cfiv", {}))
    print(f"IV suite: designs {args.designs}, methods {args.methods}, {args.seeds} seeds, torch "
          f"{torch.__version__} on {args.threads} CPU thread(s)", flush=True)
    rows = []
    for name in args.designs:
        design = _demand_design() if name.startswith("demand") else DESIGNS[name]()
        n = SIZES[name]
        for seed in range(1, args.seeds + 1):
            d = design.simulate(n, seed)
            if name.startswith("demand"):
                t_test, x_test, g_test = demand_test_set(5000, seed=10_000 + seed)
            else:
                test = design.simulate(5000, 10_000 + seed)
                t_test, x_test, g_test = test.t, test.x, design.truth(test.t, test.x)
            x_deriv = x_test[:500]
            fitted = {}

            def fit_full(method, d=d, seed=seed, fitted=fitted):
                if method not in fitted:
                    fitted[method] = (fit_control_function(d.t, d.z, d.x, d.y, ControlFunctionConfig(
                        **{**cfiv_cfg, "seed": seed})) if method == "cfiv"
                        else fit_deepiv(d.t, d.z, d.x, d.y, DeepIVConfig(**{**deepiv_cfg, "seed": seed})))
                return fitted[method]
            for method in args.methods:
                tic = time.perf_counter()
                extra = {}
                if method == "cfiv":
                    model = fit_full("cfiv")
                    predict, grid_fn = model.predict, model.predict_grid
                    extra = {"chosen": f"q={model.info['components']} pen={model.info['penalty']:g}"}
                elif method == "auto":
                    held = np.random.default_rng([seed, 11]).permutation(n) < n // 5
                    tr, va = ~held, held
                    validation = (d.t[va], d.z[va], d.x[va], d.y[va])
                    losses = {   # per held-out row, paired
                        "cfiv": fit_control_function(d.t[tr], d.z[tr], d.x[tr], d.y[tr], ControlFunctionConfig(
                            **{**cfiv_cfg, "seed": seed}), validation=validation).causal_validation_rows,
                        "deepiv": fit_deepiv(d.t[tr], d.z[tr], d.x[tr], d.y[tr], DeepIVConfig(
                            **{**deepiv_cfg, "seed": seed}), validation=validation).causal_validation_rows}
                    chosen, table = choose_estimator(losses)
                    model = fit_full(chosen)
                    predict, grid_fn = model.predict, model.predict_grid
                    cv = {r["estimator"]: r for r in table}
                    extra = {"chosen": f"{chosen} (cv {cv['cfiv']['causal_validation_loss']:.4f} / "
                                       f"{cv['deepiv']['causal_validation_loss']:.4f}, difference "
                                       f"{cv['cfiv']['causal_validation_loss'] - cv['deepiv']['causal_validation_loss']:+.4f}"
                                       f" +- {max(r['difference_se'] for r in table):.4f})"}
                elif method in ("deepiv", "direct"):
                    cfg = DeepIVConfig(**{**deepiv_cfg, "seed": seed})
                    model = fit_full("deepiv") if method == "deepiv" else fit_direct(d.t, d.x, d.y, cfg)
                    predict, grid_fn = model.predict, model.predict_grid
                elif method == "2sls":
                    predict = fit_2sls(d)
                    grid_fn = _grid_of(predict)
                elif method == "poly2sls":
                    predict, k = fit_poly2sls(d, seed)
                    grid_fn = _grid_of(predict)
                    extra = {"chosen": f"degree {k}"}
                elif method == "constant":
                    mean = float(d.y.mean())
                    predict = lambda t, x, m=mean: np.full(np.asarray(t).size, m)  # noqa: E731
                    grid_fn = _grid_of(predict)
                else:
                    raise SystemExit(f"unknown method {method}")
                seconds = time.perf_counter() - tic
                h_mse = float(np.mean((np.asarray(predict(t_test, x_test)).reshape(-1) - g_test) ** 2))
                scores = derivative_errors(grid_fn, design, x_deriv, d.t)
                rows.append({"design": name, "n": n, "seed": seed, "method": method, "h_mse": h_mse, **scores,
                             "seconds": seconds, **extra})
                shown = " ".join(f"{g[:4]} {scores[f'dh_ratio_{g}']:.3f}" for g in GROUPS if f"dh_ratio_{g}" in scores)
                print(f"  {name:16s} seed {seed} {method:9s} h_mse {h_mse:8.4f} dh_mae {scores['dh_mae']:.3f} "
                      f"{shown} {extra.get('chosen', '')} ({seconds:.1f} s)", flush=True)
                if args.csv:
                    pd.DataFrame(rows).to_csv(args.csv, index=False)
    table = pd.DataFrame(rows)
    cols = ["h_mse", "dh_mae"] + [c for c in table.columns if c.startswith("dh_ratio_")]
    summary = table.groupby(["design", "method"], sort=False)[cols].agg(["mean", "std"])
    print("\nmean and sd over seeds")
    print(summary.to_string(float_format=lambda f: f"{f:.4f}"))
    means = table.groupby(["design", "method"], sort=False)["h_mse"].mean().unstack()
    print("\nh_mse ratio to the best baseline (direct, 2sls, poly2sls, constant; < 1: the method beats them all):")
    base = means[[m for m in ("direct", "2sls", "poly2sls", "constant") if m in means]].min(axis=1)
    for method in ("auto", "cfiv", "deepiv"):
        if method in means:
            print(f"  {method:7s} " + "  ".join(f"{d} {means.loc[d, method] / base[d]:.2f}" for d in means.index))
    if "three_group" in means.index:
        tg = table[table["design"] == "three_group"].groupby("method")[[f"dh_ratio_{g}" for g in GROUPS]].mean()
        print("\nthree_group: group dh/dt curve error / peak derivative (target <= 0.10)")
        print(tg.to_string(float_format=lambda f: f"{f:.3f}"))
    if "demand_n5000" in means.index:
        print(f"\ndemand n = 5,000, rho = 0.5 (target <= 0.12): "
              + ", ".join(f"{m} {means.loc['demand_n5000', m]:.4f}" for m in means.columns))


if __name__ == "__main__":
    main()
