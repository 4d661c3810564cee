"""Calibration and power of the Eq. 7 validity test (reach.causal.validity.iv_validity), old null against new.

Null hypothesis of the test: H0: E[e^ | x, z] = E[e^ | x] -- the instrument z adds nothing to predicting the
structural residual e^ = y - h^(t, x) beyond the covariates x. A valid instrument gives H0 when h^'s error is a
function of x alone or h^ satisfies the IV moment condition; an h^ that errs in t breaks H0 for a valid z too (t moves
with z), so that design is reported apart ("H0 false"), not counted in the false-rejection rate.

Simulated datasets (n rows each, like the default world's ~5,000 videos), x ~ N(0, I_d), s = a'x / |a| one oblique
direction of x (the default world's past hearts follow content), u an unobserved confounder:

    z = 0.8 s + 0.3 (x_1^2 - 1) + 0.6 nu                 (R^2 of z on x ~ 0.7; nu ~ N(0, 1))
    t = 0.7 z + 0.3 x_2 + 0.8 u + 0.5 eta
    y = h(t, x) + 0.8 u + 0.6 eps,   h(t, x) = 0.5 t + 0.4 sin(1.5 t) + 0.3 x_3 + 0.2 x_4 t

designs (valid: the instrument meets exclusion and exogeneity):
  valid, h^ off in x     h^ = h + d(x), d(x) = 0.25 sin(2 s) + 0.15 x_3 x_4: a smooth misfit in x along the
                         direction z tracks. H0 true. The design the old (marginal) null gets wrong: real z is a
                         proxy of s that helps the trees fit d, permuted z is not.
  valid, sieve 2SLS h^   h^ fitted by polynomial 2SLS (cubic in t, linear in x, two t-x terms; instruments a
                         quartic in z, x, x_1^2 and z-x terms): a realistic imperfect IV fit, errors in t and x.
                         H0 holds only approximately (the fit's moment conditions make e^ orthogonal to its instrument
                         basis).
  valid, h^ off in t     h^ = h without the 0.4 sin(1.5 t) term (a too-flat fit, like Deep IV's on the default world).
                         H0 FALSE for a valid z: rejection here is the test seeing h^'s misfit.
invalid designs (h^ = h + d(x) as in the first design, so only the instrument is wrong):
  invalid, direct        exclusion violated: y gains beta * z, beta = 0.25 (z's part beyond x then explains ~2% of
                         e^'s variance)
  invalid, z ~ u         exogeneity violated: nu = 0.2 u' + sqrt(1 - 0.04) nu' with u' the confounder's part in y
                         (corr 0.2; ~2.5% of e^'s variance)
  invalid, proxy         the default world's truth check (scripts/check_fei_truth.py): z = u + 0.5 N(0, 1)
  invalid, direct, 2SLS  as "invalid, direct" but h^ fitted by the sieve 2SLS with that invalid z: the fit absorbs
                         much of the violation (just what Deep IV fitted with z would do), so power is low.

Per dataset one call of iv_validity(..., compare_marginal=True) runs both tests on the same held-out split and
model: the old null permutes z across rows (statistic gamma on e^); the new one permutes z's residual on a cross-fitted
E^[z|x] within strata, with the distilled statistic (held-out R^2 of e^ - E^[e^|x] from (x, z - E^[z|x]);
reach.causal.validity); the paired-t column is the one-sided paired t-test of the held-out losses of the x-only and
(x, z) models. Printed: per design and
null, the rejection rate at 5% with its binomial 95% interval, mean gamma, mean runtime per dataset.

    nice -n 10 .venv/bin/python benchmarks/iv_validity.py [--n 5000] [--datasets 100] [--permutations 19]
        [--designs valid_x,invalid_direct,...] [--small 30] [--jobs 2] [--csv rows.csv]

--datasets is the count for the headline designs (valid, h^ off in x; invalid, direct), --small for the others.
With 19 permutations a p-value <= 0.05 means gamma beat all 19 null draws: the level is exactly 5% under H0's
exchangeability; power is a lower bound on the workflow's 99-permutation test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from reach.causal.validity import iv_validity

D = 8
ALPHA = 0.05


def simulate(design: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(e^, x, z) for one dataset of `design` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    a = np.linspace(1.0, -0.5, D)
    s = x @ a / np.linalg.norm(a)
    u = rng.normal(size=n)
    nu = rng.normal(size=n)
    if design == "invalid_u":
        nu = 0.2 * u + np.sqrt(1 - 0.2 ** 2) * nu
    z = 0.8 * s + 0.3 * (x[:, 0] ** 2 - 1) + 0.6 * nu
    t = 0.7 * z + 0.3 * x[:, 1] + 0.8 * u + 0.5 * rng.normal(size=n)

    def h(tt, with_s_curve=True):
        return 0.5 * tt + (0.4 * np.sin(1.5 * tt) if with_s_curve else 0.0) + 0.3 * x[:, 2] + 0.2 * x[:, 3] * tt

    y = h(t) + 0.8 * u + 0.6 * rng.normal(size=n)
    if design.startswith("invalid_direct"):
        y = y + 0.25 * z
    if design == "invalid_proxy":
        z = u + 0.5 * rng.normal(size=n)
    d_x = 0.25 * np.sin(2 * s) + 0.15 * x[:, 2] * x[:, 3]
    if design in ("valid_sieve", "invalid_direct_sieve"):
        h_hat = sieve_2sls(y, t, x, z)
    elif design == "valid_t":
        h_hat = h(t, with_s_curve=False)
    else:
        h_hat = h(t) + d_x
    return y - h_hat, x, z


def sieve_2sls(y: np.ndarray, t: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Fitted h^(t, x) of polynomial 2SLS: features cubic in t, x, t x_3, t x_4; instruments a quartic in z, x,
    x_1^2, z x_1, z x_3, z x_4 (the residual y - h^ is orthogonal to the instruments in sample)."""
    one = np.ones_like(t)
    phi = np.column_stack([one, t, t ** 2, t ** 3, x, t * x[:, 2], t * x[:, 3]])
    psi = np.column_stack([one, z, z ** 2, z ** 3, z ** 4, x, x[:, 0] ** 2, z * x[:, 0], z * x[:, 2], z * x[:, 3]])
    fitted_phi = psi @ np.linalg.lstsq(psi, phi, rcond=None)[0]                 # first stage: E^[phi | instruments]
    beta = np.linalg.lstsq(fitted_phi, y, rcond=None)[0]
    return phi @ beta


DESIGNS = {"valid_x": ("valid, h^ off in x", True), "invalid_direct": ("invalid, direct 0.25 z", False),
           "invalid_proxy": ("invalid, confounder proxy", False), "valid_sieve": ("valid, sieve 2SLS h^", True),
           "invalid_u": ("invalid, corr(z, u) 0.2", False), "valid_t": ("valid, h^ off in t (H0 false)", False),
           "invalid_direct_sieve": ("invalid, direct, 2SLS h^", False)}
HEADLINE = ("valid_x", "invalid_direct")


def wilson(k: int, m: int) -> tuple[float, float]:
    res = stats.binomtest(k, m).proportion_ci(0.95, method="wilson")
    return res.low, res.high


def one_dataset(task: tuple[str, int, int, int, int]) -> tuple[str, int, dict, float]:
    """Both tests on dataset i of a design (in a worker process)."""
    key, j, i, n, permutations = task
    e, x, z = simulate(key, n, seed=1000 * (j + 1) + i)
    t0 = time.process_time()
    out = iv_validity(e, x, z, seed=i, n_permutations=permutations, n_boot=200, compare_marginal=True)
    return key, i, out, time.process_time() - t0


def main() -> None:
    from concurrent.futures import ProcessPoolExecutor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--small", type=int, default=30)
    ap.add_argument("--permutations", type=int, default=19)
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    ap.add_argument("--csv", default="", help="append one line per dataset (design, i, gamma, beyond x, p old, "
                    "p new, p paired) to this file as it finishes")
    args = ap.parse_args()
    designs = args.designs.split(",")
    unknown = set(designs) - set(DESIGNS)
    if unknown:
        raise SystemExit(f"unknown designs {sorted(unknown)}; choose from {list(DESIGNS)}")
    counts = {key: args.datasets if key in HEADLINE else args.small for key in designs}
    # interleaved (dataset 0 of every design, then 1, ...) so that a partial run covers every design
    tasks = [(key, list(DESIGNS).index(key), i, args.n, args.permutations)
             for i in range(max(counts.values())) for key in designs if i < counts[key]]
    print(f"n = {args.n} rows per dataset, d = {D} covariates, {args.permutations} permutations, level {ALPHA}, "
          f"{len(tasks)} datasets, {args.jobs} worker(s)", flush=True)
    results: dict[str, list] = {key: [] for key in designs}
    t_start = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for key, i, out, cpu in pool.map(one_dataset, tasks):
            results[key].append((out, cpu))
            if args.csv:
                with open(args.csv, "a") as f:
                    f.write(f"{key},{i},{out['gamma']:.6f},{out['gamma_beyond_x']:.6f},{out['p_value_marginal']:.4f},"
                            f"{out['p_value']:.4f},{out['p_value_paired']:.6f},{cpu:.2f}\n")
    header = (f"{'design':34s} {'H0':>5s} {'sets':>4s} | {'old (marginal) reject':>26s} | "
              f"{'new (conditional) reject':>26s} | {'paired-t':>8s} | {'gamma':>7s} {'beyond x':>8s} | {'cpu s':>5s}")
    print(header)
    print("-" * len(header))
    for key in designs:
        label, h0 = DESIGNS[key]
        rows = results[key]
        m = len(rows)
        rej = {"marginal": sum(o["p_value_marginal"] <= ALPHA for o, _ in rows),
               "conditional": sum(o["p_value"] <= ALPHA for o, _ in rows),
               "paired": sum(o["p_value_paired"] <= ALPHA for o, _ in rows)}

        def cell(k):
            lo, hi = wilson(rej[k], m)
            return f"{rej[k] / m:6.1%} [{lo:5.1%}, {hi:5.1%}] {rej[k]:3d}/{m:<3d}"

        print(f"{label:34s} {'true' if h0 else 'false':>5s} {m:4d} | {cell('marginal'):>26s} | "
              f"{cell('conditional'):>26s} | {rej['paired'] / m:8.1%} | {np.mean([o['gamma'] for o, _ in rows]):7.4f} "
              f"{np.mean([o['gamma_beyond_x'] for o, _ in rows]):8.4f} | {np.mean([c for _, c in rows]):5.2f}")
    print(f"total {time.time() - t_start:.0f} s wall. reject = share of datasets with p <= {ALPHA} [Wilson 95% "
          "interval]; on H0-true rows it is the false-rejection rate (target 2%-8%), on invalid rows the power "
          "(target >= 80%). cpu s = CPU seconds per dataset for both tests together (one thread; one call of "
          "iv_validity(compare_marginal=True): shared split and fits on (x, z) and x, 2 x permutations refits).")


if __name__ == "__main__":
    main()
