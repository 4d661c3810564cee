"""The workflow as a user runs it: config validation, lint, the DAG, and a tiny end-to-end run."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reach.tiers import TIERS
import yaml
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SCHEMA = REPO / "rules" / "workflow_config.schema.yaml"


def run_snakemake(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_default_config_is_valid_and_defaults_fill_in():
    config = yaml.safe_load((REPO / "workflow_config.yaml").read_text())
    validate(config, str(SCHEMA))
    minimal = {"seed": 1}
    validate(minimal, str(SCHEMA))
    assert minimal["world"]["videos_per_hashtag"] == 110 and minimal["ingest"]["impressions_day"] == 14
    assert minimal["scrapes"]["dir"] is None


@pytest.mark.parametrize("bad, needle", [
    ({"seed": 1, "wrold": {}}, "wrold"),                                  # typo in a top-level key
    ({"seed": 1, "world": {"n_hashtags": "many"}}, "many"),              # wrong type
    ({"seed": 1, "world": {"media_width": 95}}, "95"),                    # odd frame width
    ({"seed": -3}, "-3"),
    ({"seed": 1, "ingest": {"impressions_day": 14, "extra": 1}}, "extra"),
])
def test_bad_config_fails_with_a_message_naming_the_problem(bad, needle):
    with pytest.raises(Exception) as info:
        validate(bad, str(SCHEMA))
    assert needle in str(info.value)


def test_bad_config_stops_snakemake_with_a_clear_message(tmp_path):
    out = run_snakemake("-n", "--config", "world={n_hashtags: lots}", cwd=tmp_path)
    assert out.returncode != 0
    assert "lots" in out.stderr + out.stdout and "n_hashtags" in out.stderr + out.stdout


def test_lint_is_clean():
    out = run_snakemake("--lint")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Congratulations" in out.stdout + out.stderr


def test_dry_run_prints_the_dag(tmp_path):
    out = run_snakemake("-n", "-d", str(tmp_path))  # an empty working directory: the whole DAG, whatever results/ holds
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    for rule in ("simulate_world", "render_media", "ingest_scrapes", "simulate_promotion", "benchmark_promotion"):
        assert rule in text


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.workflow
def test_tiny_end_to_end_run_is_complete_and_deterministic(tiny_run):
    # the run is shared with test_report.py (tests/conftest.py: tiny_run, once per session)
    config = str(REPO / "tests" / "tiny_config.yaml")
    tmp_path = tiny_run.dir
    assert tiny_run.returncode == 0, tiny_run.log_tail
    res = tmp_path / "results"
    videos = pd.read_parquet(res / "ingest" / "videos.parquet")
    summary = json.loads((res / "ingest" / "summary.json").read_text())
    truth = pd.read_parquet(res / "synthetic" / "truth" / "videos.parquet")
    rec = summary["records"]
    assert rec["read"] == rec["accepted"] + rec["rejected"] + rec["duplicates"]
    # every video of the world is accepted except those whose media the world withheld
    assert set(videos["video_id"]) == set(truth.loc[~truth["media_missing"], "video_id"])
    assert summary["videos"]["rejected_by_reason"] == {"media_missing": int(truth["media_missing"].sum())}
    rejected = [json.loads(x) for x in (res / "ingest" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == rec["rejected"] + summary["creator_posts"]["rejected"]
    for p in videos["media_path"]:
        assert (tmp_path / p).stat().st_size > 1000
    for rule in ("simulate_world", "ingest_scrapes", "benchmark_promotion"):
        assert (res / "logs" / f"{rule}.log").stat().st_size > 0
        assert (res / "benchmarks" / f"{rule}.tsv").exists()
    table1 = pd.read_parquet(res / "promotion" / "table1.parquet")
    assert set(table1["policy"]) == {"NoD", "AGA", "ATT", "TIM", "POT"}
    assert (table1["total_mean"] > 0).all() and "paper_total" in table1.columns

    _readme_selection_snippet_matches_the_rule(tmp_path)
    causal_truth_holds(res)
    diffusion_recovery_holds(res)
    growth_truth_holds(res)

    # Nothing to do on a second run; a forced rerun of the world gives byte-identical tables.
    again = run_snakemake("--cores", "2", "--configfile", config, "-d", str(tmp_path), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    before = {p.name: _digest(p) for p in (res / "synthetic" / "truth").glob("*.parquet")}
    before["items"] = _digest(sorted((res / "synthetic" / "scrapes" / "items").glob("*.jsonl"))[3])
    shutil.copy(res / "ingest" / "videos.parquet", tmp_path / "videos_before.parquet")
    forced = run_snakemake("--cores", "2", "--configfile", config, "-d", str(tmp_path), "-R", "simulate_world")
    assert forced.returncode == 0, forced.stderr[-3000:]
    after = {p.name: _digest(p) for p in (res / "synthetic" / "truth").glob("*.parquet")}
    after["items"] = _digest(sorted((res / "synthetic" / "scrapes" / "items").glob("*.jsonl"))[3])
    assert before == after
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "videos_before.parquet"),
                                  pd.read_parquet(res / "ingest" / "videos.parquet"))


def _readme_selection_snippet_matches_the_rule(run_dir: Path) -> None:
    """The README's notebook block (optimal influencer size from the chosen estimator's saved members) runs as written in a
    finished run's folder and gives the optimum that rule select_influencer wrote for the same campaign."""
    import re

    readme = (REPO / "README.md").read_text()
    block = readme.split("From a notebook:\n\n```python\n", 1)[1].split("```", 1)[0]
    campaign = pd.read_csv(run_dir / "results" / "causal" / "campaigns.tsv", sep="\t").iloc[0]
    code = block.replace('"SparkleSwitch"', repr(campaign["hashtag"]))
    assert code != block
    out = subprocess.run([sys.executable, "-c", code], cwd=run_dir, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = {k: float(v) for k, v in re.findall(r"(\w+)=([-0-9.e+]+|nan)", out.stdout)}
    rule = pd.read_csv(run_dir / "results" / "causal" / "selection" / f"{campaign['slug']}.csv").iloc[0]
    # the rule interpolates h linearly between the FEI grid's points (61 over 100..50M followers, 0.22 apart in log),
    # the snippet evaluates h on 2,000: near a flat optimum the arg max may move by up to half a grid step (~12%)
    grid = np.load(run_dir / "results" / "causal" / "fei_members.npz")["log_followers_grid"]
    half_step = float(np.exp(np.diff(grid).max() / 2) - 1)
    assert printed["followers"] == pytest.approx(rule["followers"], rel=half_step)
    assert printed["profit"] == pytest.approx(rule["profit"], rel=0.01)
    # the rule flags an optimum outside the data's follower range (1st-99th percentile of all videos' followers)
    followers = pd.read_parquet(run_dir / "results" / "ingest" / "videos.parquet", columns=["followers"])["followers"]
    lo, hi = np.percentile(np.log(followers.to_numpy(float)), [1, 99])
    assert rule["support_min_followers"] == pytest.approx(np.exp(lo))
    assert rule["support_max_followers"] == pytest.approx(np.exp(hi))
    assert bool(rule["optimum_extrapolated"]) == (not lo - 1e-9 <= np.log(rule["followers"]) <= hi + 1e-9)
    heat = pd.read_parquet(run_dir / "results" / "causal" / "selection" / f"{campaign['slug']}_heatmap.parquet")
    log_opt = np.log(heat["optimal_followers"].to_numpy(float))
    assert heat["extrapolated"].tolist() == ((log_opt < lo - 1e-9) | (log_opt > hi + 1e-9)).tolist()


# -- what the tiny world can show of the simulator's truth (issue 21 item 4, issue 18 item 6) -----------------------
# Thresholds from the tiny run of 2026-12-01 (seed 7, tests/tiny_config.yaml), measured figure in each comment; each
# helper was checked to fail on a copy of that run with the estimate or the truth broken (tests' report, issue 21).


def _off_diagonal_mean(cost: np.ndarray) -> float:
    """Mean of cost[i, j] over i != j: the error of the estimates against the truth of another unit (the
    shuffled-truth baseline, averaged over all pairings)."""
    return float(cost[~np.eye(len(cost), dtype=bool)].mean())


def causal_truth_holds(res: Path) -> None:
    """35 videos and 2 small ensemble members cannot pin the FEI's level or shape down (the campaign-shape, tier and
    band targets of the truth check fail there), so this asserts what the world can show: the truth check was
    computed on this run's curves, the true and the estimated average FEI are positive, the naive correlational
    curve is biased upward (the unobserved creator trait raises followers and impressions together; measured +0.36
    over the data's follower range) and the causal curve is closer to the truth than the naive one (average-curve
    MAE 0.15 with control-function IV, 0.24 with Deep IV, against the naive curve's 0.80)."""
    check = pd.read_csv(res / "causal" / "truth_check.csv").set_index("metric")
    for metric in ("campaign_tier_fei_mae", "campaign_shape_accuracy", "average_band_coverage", "average_fei_mae",
                   "naive_fei_mae", "video_fei_corr_at_own_followers", "validity_p_invalid_instrument"):
        assert metric in check.index and np.isfinite(check.loc[metric, "value"]), metric
    # the true average FEI over the data's follower range (1st-99th percentile), from the truth files directly
    videos = pd.read_parquet(res / "ingest" / "videos.parquet")
    ids = videos["video_id"].astype(str)
    wide = pd.read_parquet(res / "synthetic" / "truth" / "fei_grid.parquet").astype({"video_id": str}).pivot(
        index="video_id", columns="log_followers", values="fei").loc[ids]
    average = pd.read_parquet(res / "causal" / "tables" / "average.parquet")
    naive = pd.read_parquet(res / "causal" / "tables" / "naive.parquet")
    grid = average["log_followers"].to_numpy(float)
    np.testing.assert_allclose(naive["log_followers"], grid)
    true_average = np.mean([np.interp(grid, wide.columns.to_numpy(float), row) for row in wide.to_numpy()], axis=0)
    lo, hi = np.percentile(videos["log_followers"], [1, 99])
    support = (grid >= lo) & (grid <= hi)
    assert support.sum() >= 10
    assert (true_average[support] > 0).all()                    # the world's FEI is positive everywhere
    causal_mae = float(np.abs(average["estimate"].to_numpy() - true_average)[support].mean())
    naive_mae = float(np.abs(naive["elasticity"].to_numpy() - true_average)[support].mean())
    assert check.loc["average_fei_mae", "value"] == pytest.approx(causal_mae, rel=1e-6)
    # causal.point_estimate all_rows (CF-IV, band sets on): the average curve is the fit on all videos, from the band-set
    # rule, not the members' average; the band is centred on it
    with np.load(res / "causal" / "fei_members.npz", allow_pickle=False) as d:
        point, member_fei = d["point_fei"].astype(float), d["fei"].astype(float)
        point_h, member_h = d["point_h"].astype(float), d["h"].astype(float)
    with np.load(res / "causal" / "cfiv" / "band_sets.npz", allow_pickle=False) as d:
        np.testing.assert_allclose(point, d["fit_fei"])
        np.testing.assert_allclose(point_h, d["fit_h"])
    # h too (Table 4's impressions curves, the selection, the README's notebook): the fit on all videos, saved as a model
    grid_h = pd.read_parquet(res / "causal" / "fei_grid.parquet")["h"].to_numpy(float)
    np.testing.assert_allclose(grid_h, point_h.ravel(), rtol=1e-6)
    assert np.abs(point_h - member_h.mean(axis=0)).max() > 1e-4
    assert json.loads((res / "causal" / "estimator.json").read_text())["point_models"] == [
        "results/causal/cfiv/fit-all.safetensors"]
    assert average["point_estimate"].eq("all_rows").all()
    np.testing.assert_allclose(average["estimate"], point.mean(axis=0), rtol=1e-6, atol=1e-9)
    assert np.abs(average["estimate"] - member_fei.mean(axis=(0, 1))).max() > 1e-6    # not the members' average
    assert check.loc["naive_fei_mae", "value"] == pytest.approx(naive_mae, rel=1e-6)
    # the sign: the estimated average FEI is positive over the data's range, as the truth is (control-function IV,
    # the default estimator: 0.058-0.116, mean 0.081, against a true 0.09-0.32; its band still covers 0 there. Deep IV
    # on this world came out at -0.008 to -0.022, so the sign is what this size can show, not the level)
    estimate = average["estimate"].to_numpy()[support]
    assert estimate.mean() > 0.02 and (estimate > 0).mean() >= 0.8, f"average FEI estimate {np.round(estimate, 3)}"
    naive_bias = float((naive["elasticity"].to_numpy() - true_average)[support].mean())
    assert naive_bias > 0.1, f"the naive curve is not biased upward: mean naive - true FEI = {naive_bias:.3f}"
    assert naive_mae > 2 * causal_mae, (naive_mae, causal_mae)
    # Table 4's truth over the same follower range as the estimate, recomputed here from the truth files: per
    # campaign, its videos' mean true FEI averaged over each tier's grid points inside the support
    true_tiers = pd.read_parquet(res / "causal" / "truth_campaign_tiers.parquet").set_index("hashtag")
    estimated = pd.read_parquet(res / "causal" / "tables" / "campaign_tiers.parquet").set_index("hashtag")
    assert set(true_tiers.index) == set(estimated.index) and len(true_tiers) >= 1
    followers = np.exp(grid)
    for tag in true_tiers.index:
        rows = (videos["hashtag"] == tag).to_numpy()
        curve = np.mean([np.interp(grid, wide.columns.to_numpy(float), row) for row in wide.to_numpy()[rows]], axis=0)
        for name, t_lo, t_hi in TIERS:
            cells = support & (followers >= t_lo) & (followers < t_hi)
            expected = curve[cells].mean() if cells.any() else np.nan
            np.testing.assert_allclose(true_tiers.loc[tag, name], expected, rtol=1e-9, err_msg=f"{tag} {name}")
            assert np.isfinite(estimated.loc[tag, name]) == cells.any(), (tag, name)


def diffusion_recovery_holds(res: Path) -> None:
    """4 categories of 10-20 videos over 80 hours: the P-BDM estimators recover (p, q) to within 0.01-0.014 (mean
    distance; 0.12-0.17 of the shuffled-truth baseline's 0.079), rank the categories' p and q exactly (Spearman 1.0
    for every method) and land on the grid point nearest the true time decay (0.98 for 0.983, grid step 0.005);
    BDM, which ignores promotion, is off by 0.16 (as far as a shuffled truth)."""
    summary = json.loads((res / "diffusion" / "recovery.json").read_text())
    table = pd.read_parquet(res / "diffusion" / "recovery.parquet")
    by = summary["by_model_method"]
    assert set(by) == {"P-BDM OLS", "P-BDM D-OLS", "P-BDM MLE", "P-BDM D-MLE", "BDM OLS", "BDM MLE"}
    for label, rec in by.items():
        d = table[(table["model"] + " " + table["method"]) == label]
        assert rec["categories"] == len(d) == 4, label
        est, true = d[["p", "q"]].to_numpy(), d[["p_true", "q_true"]].to_numpy()
        error = np.hypot(est[:, 0] - true[:, 0], est[:, 1] - true[:, 1])
        assert rec["mean_error"] == pytest.approx(error.mean(), rel=1e-9), label
        if label.startswith("BDM"):
            continue
        baseline = _off_diagonal_mean(np.hypot(est[:, None, 0] - true[None, :, 0], est[:, None, 1] - true[None, :, 1]))
        assert rec["mean_error"] < 0.03 and rec["mean_error"] < 0.4 * baseline, (label, rec["mean_error"], baseline)
        assert rec["p_spearman"] >= 0.8 and rec["q_spearman"] >= 0.8, (label, rec)
        assert abs(rec["gamma"] - summary["true_gamma"]) <= 0.005 + 1e-9, (label, rec["gamma"])
    assert by["BDM OLS"]["mean_error"] > 5 * by["P-BDM D-OLS"]["mean_error"]


def growth_truth_holds(res: Path) -> None:
    """6 hashtags of 6 videos, 2 short chains: the posterior of each hashtag's finite-sample mean growth a and b
    recovers the truth (MAE 0.006 / 0.003 against 0.71 / 0.65 when the truth is another hashtag's; 90% intervals
    cover 6 of 6), and the hierarchical mean of a (Eq. 20) is a rougher 0.11 against 0.75."""
    agg = pd.read_csv(res / "growth" / "truth_check.csv").set_index("quantity")
    per = pd.read_parquet(res / "growth" / "truth_check_hashtags.parquet")
    ratios = {}
    for quantity, g in per.groupby("quantity"):
        mean, truth = g["mean"].to_numpy(), g["truth"].to_numpy()
        assert agg.loc[quantity, "hashtags"] == len(g) == 6, quantity
        assert agg.loc[quantity, "mean_abs_error"] == pytest.approx(np.abs(mean - truth).mean(), rel=1e-9)
        ratios[quantity] = np.abs(mean - truth).mean() / _off_diagonal_mean(np.abs(mean[:, None] - truth[None, :]))
    for quantity in ("sample_a", "sample_b"):
        assert ratios[quantity] < 0.1, ratios
        assert agg.loc[quantity, "covered_90"] >= 4 / 6, agg
    assert ratios["model_a"] < 0.5, ratios
