"""The workflow as a user runs it: config validation, lint, the DAG, and a tiny end-to-end run."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
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
    """The README's notebook block (optimal influencer size from the saved Deep IV members) runs as written in a
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
    assert printed["followers"] == pytest.approx(rule["followers"], rel=0.03)
    assert printed["profit"] == pytest.approx(rule["profit"], rel=0.01)
