"""The causal estimators behind one small protocol, so the rules and the FEI code need not know which one ran.

    fit_estimator(name, t, z, x, y, params, seed, validation=None, threads=None) -> model
    fit_selected(name, t, z, x, y, configs, validation, groups=None) -> (model, selection): one fit per candidate
        config, the one with the lowest held-out second-stage loss kept (Hartford et al.'s causal validation)
    model.predict(t, x) -> h per row;  model.predict_grid(t_grid, x) -> (rows, grid)
    model.save(path);  load_model(path) -> model (dispatch on the safetensors header)
    choose_estimator(losses) -> (name, table): per data set, by the causal validation loss (one-standard-error rule)

name: "deepiv" (reach.causal.deepiv, Hartford et al. 2017, the paper's estimator) or "cfiv" (reach.causal.
control_function, the series control-function IV). `params` is the estimator's config block (workflow_config.yaml
causal.<name>).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from reach.causal import control_function, deepiv

ESTIMATORS = ("deepiv", "cfiv")
LABELS = {"deepiv": "Deep IV (Hartford et al. 2017; paper 1's estimator)",
          "cfiv": "control-function IV, series (Newey, Powell & Vella 1999)"}
SHORT_LABELS = {"deepiv": "Deep IV", "cfiv": "CF-IV"}   # for figure legends


class CausalModel(Protocol):
    info: dict

    def predict(self, t: np.ndarray, x: np.ndarray) -> np.ndarray: ...

    def predict_grid(self, t_grid: np.ndarray, x: np.ndarray) -> np.ndarray: ...

    def save(self, path: str | Path) -> None: ...


def make_config(name: str, params: dict, seed: int, threads: int | None = None, device: str | None = None):
    if name == "deepiv":
        extra = {"threads": threads} | ({"device": device} if device else {})
        return deepiv.DeepIVConfig(**{**params, "seed": int(seed), **extra})
    if name == "cfiv":
        return control_function.ControlFunctionConfig(**{**params, "seed": int(seed)})
    raise ValueError(f"unknown causal estimator {name!r}; choose one of {ESTIMATORS}")


def fit_estimator(name: str, t, z, x, y, config, validation=None, groups=None) -> CausalModel:
    """`groups`: per row, the observation it copies (a bootstrap resample's row indices); CF-IV keeps copies in one
    cross-fitting fold, Deep IV has no cross-fitting (its held-out rows are `validation`)."""
    if name == "deepiv":
        return deepiv.fit_deepiv(t, z, x, y, config, validation=validation)
    if name == "cfiv":
        return control_function.fit_control_function(t, z, x, y, config, validation=validation, groups=groups)
    raise ValueError(f"unknown causal estimator {name!r}; choose one of {ESTIMATORS}")


def fit_selected(name: str, t, z, x, y, configs: list, validation, groups=None) -> tuple[CausalModel, list[dict]]:
    """Fit `name` once per candidate config and keep the one with the lowest held-out second-stage loss,
    E_F^[(y - h(t, x))^2 | z, x] on the `validation` rows (Hartford et al. 2017's causal validation: it needs only
    observables, so a user's own scrapes get the same choice). Both estimators report that loss on standardised y
    as info["second_stage_val_loss"]. Returns the kept model (its history gains a `candidate` column covering every
    candidate's rows and a `selected` flag) and one row per candidate."""
    if not configs:
        raise ValueError("fit_selected needs at least one candidate config")
    if validation is None and len(configs) > 1:
        raise ValueError("choosing among candidate configs needs held-out rows (validation)")
    fits, rows = [], []
    for k, config in enumerate(configs):
        model = fit_estimator(name, t, z, x, y, config, validation=validation, groups=groups)
        fits.append(model)
        rows.append({"candidate": k, "config": config.to_json(),
                     "second_stage_val_loss": float(model.info.get("second_stage_val_loss", np.nan))})
    losses = np.array([r["second_stage_val_loss"] for r in rows])
    best = int(np.nanargmin(losses)) if np.isfinite(losses).any() else 0
    for r in rows:
        r["selected"] = r["candidate"] == best
    kept = fits[best]
    if len(configs) > 1:
        import pandas as pd

        kept.history = pd.concat([m.history.assign(candidate=k, selected=k == best) for k, m in enumerate(fits)],
                                 ignore_index=True)
        kept.info = {**kept.info, "candidate": best, "candidates": rows}
    return kept, rows


SIMPLEST_FIRST = ("cfiv", "deepiv")   # a closed-form series before a pair of networks (the one-standard-error rule)


def choose_estimator(losses: dict[str, list[float]], se_rule: float = 1.0) -> tuple[str, list[dict]]:
    """The estimator to report for this data set by its causal validation loss (held-out (y - E_F^[h(t, x) | z, x])^2
    on standardised y, each estimator with its own first stage F: Hartford et al. 2017, Section 4; observables only).
    `losses` holds paired replicates per estimator: one value per ensemble member (all estimators' members are
    fitted on the same bootstrap resamples and judged on the same out-of-bag rows) or one per held-out row. The
    estimator with the lowest mean wins unless a simpler one (SIMPLEST_FIRST) is within `se_rule` standard errors of
    it, the standard error being that of the mean paired difference (Breiman et al.'s one-standard-error rule: the
    criterion is noisy, e.g. 400 held-out rows cannot tell h errors of 0.01 and 0.2 apart on DeepGMM's sin design).
    Returns the name and one row per estimator (mean, sd, replicates, difference to the lowest and its standard
    error, chosen)."""
    if not losses:
        raise ValueError("choose_estimator needs the losses of at least one estimator")
    values = {}
    for name, v in losses.items():
        v = np.asarray(v, float)
        if v.size == 0 or not np.isfinite(v).all():
            raise ValueError(f"estimator {name!r} has replicates without a finite causal validation loss: {list(v)}")
        values[name] = v
    sizes = {v.size for v in values.values()}
    if len(sizes) > 1:
        raise ValueError(f"paired replicates differ in number between estimators: "
                         f"{ {k: v.size for k, v in values.items()} }")
    names = sorted(values, key=lambda k: (SIMPLEST_FIRST.index(k) if k in SIMPLEST_FIRST else len(SIMPLEST_FIRST)))
    lowest = min(names, key=lambda k: values[k].mean())
    rows = []
    for name in names:
        d = values[name] - values[lowest]
        se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("inf")
        rows.append({"estimator": name, "causal_validation_loss": float(values[name].mean()),
                     "causal_validation_loss_sd": float(values[name].std(ddof=1)) if values[name].size > 1 else 0.0,
                     "replicates": int(values[name].size), "difference_to_lowest": float(d.mean()),
                     "difference_se": 0.0 if name == lowest else se, "lowest": name == lowest})
    chosen = next(r["estimator"] for r in rows
                  if r["lowest"] or r["difference_to_lowest"] <= se_rule * r["difference_se"])
    for r in rows:
        r["chosen"] = r["estimator"] == chosen
    return chosen, rows


def load_model(path: str | Path, device: str = "auto") -> CausalModel:
    """A saved model of either estimator (told apart by its safetensors metadata key)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"causal model {path} does not exist")
    with safe_open(str(path), framework="numpy") as f:
        keys = set((f.metadata() or {}))
    if control_function.METADATA_KEY in keys:
        return control_function.ControlFunctionModel.load(path)
    if "reach_deepiv" in keys:
        return deepiv.DeepIVModel.load(path, device=device)
    raise ValueError(f"{path} is neither a reach Deep IV nor a CF-IV model (metadata keys {sorted(keys)})")
