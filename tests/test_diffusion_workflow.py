"""The diffusion rules end to end on the tiny config: simulated logs, then the same logs given as a user's own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_workflow import diffusion_recovery_holds

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_config.yaml"
TARGETS = ["results/diffusion/recovery.json", "results/diffusion/estimator_study/figure2.png",
           "results/diffusion/fitted_curves.png"]


def snakemake(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.workflow
def test_diffusion_rules_on_simulated_then_user_logs(tmp_path):
    sim = tmp_path / "sim"
    out = snakemake("--cores", "2", "--configfile", str(TINY), "-d", str(sim), *TARGETS)
    assert out.returncode == 0, out.stderr[-3000:]
    res = sim / "results" / "diffusion"
    est = pd.read_parquet(res / "estimates.parquet")
    assert {"category", "model", "method", "gamma", "p", "q"} <= set(est.columns)
    assert set(zip(est["model"], est["method"])) == {("P-BDM", "OLS"), ("P-BDM", "D-OLS"), ("P-BDM", "MLE"),
                                                     ("P-BDM", "D-MLE"), ("BDM", "OLS"), ("BDM", "MLE")}
    summary = json.loads((res / "logs" / "summary.json").read_text())
    r = summary["rows"]
    assert r["read"] == r["accepted"] + r["rejected"] + r["duplicates"] and r["rejected"] > 0
    rejected = (res / "logs" / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == r["rejected"] and all("reason" in json.loads(x) for x in rejected)
    wm = pd.read_parquet(res / "wmape.parquet").set_index("label")
    assert wm.loc["P-BDM D-OLS", "wmape_mean"] < wm.loc["BDM OLS", "wmape_mean"]
    assert "pq_correlation" in json.loads((res / "tests.json").read_text())
    diffusion_recovery_holds(sim / "results")          # estimates against the simulator's truth (recovery.json)
    for rule in ("simulate_promotion_logs", "prepare_promotion_logs", "calibrate_diffusion", "estimator_study"):
        assert (sim / "results" / "logs" / f"{rule}.log").stat().st_size > 0
        assert (sim / "results" / "benchmarks" / f"{rule}.tsv").exists()
    again = snakemake("--cores", "2", "--configfile", str(TINY), "-d", str(sim), "-n", *TARGETS)
    assert "Nothing to be done" in again.stdout + again.stderr

    # The same logs as a user's own folder: no simulation, no truth comparison, identical estimates.
    mine = tmp_path / "my_logs"
    mine.mkdir()
    shutil.copy(sim / "results/synthetic/promotion/promotion_logs.parquet", mine / "promotion_logs.parquet")
    (mine / "metadata.json").write_text(json.dumps({"market": 518646}))
    cfg = yaml.safe_load(TINY.read_text())
    cfg["diffusion"]["promotion_logs"]["dir"] = str(mine)
    user_cfg = tmp_path / "user.yaml"
    user_cfg.write_text(yaml.safe_dump(cfg))
    user = tmp_path / "user"
    plan = snakemake("--configfile", str(user_cfg), "-d", str(user), "-n", "--quiet", "rules")
    assert plan.returncode == 0, plan.stderr[-2000:]
    text = plan.stdout + plan.stderr
    assert "evaluate_diffusion_recovery" not in text
    out = snakemake("--cores", "2", "--configfile", str(user_cfg), "-d", str(user), "results/diffusion/estimates.parquet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert not (user / "results/synthetic/promotion").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(user / "results/diffusion/estimates.parquet"), est)
