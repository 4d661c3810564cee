"""Cluster use: shard counts from corpus size, the Slurm profile, the output comparison of tests/slurm/run.sh, and
(only with REACH_TEST_SLURM=1, as root) the real one-node Slurm run itself."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from reach.synthetic.world import WorldSpec, expected_videos, simulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "slurm"))
import compare  # noqa: E402


def dry_run_counts(tmp_path: Path, *args: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--quiet", "rules",
                          "-d", str(tmp_path), *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out.stdout + out.stderr, re.M)}


def test_auto_shards_follow_the_corpus_size(tmp_path):
    world = yaml.safe_load((REPO / "workflow_config.yaml").read_text())["world"]
    videos = expected_videos(world["n_hashtags"], world["videos_per_hashtag"], world["n_sponsored"],
                             world.get("videos_per_campaign"))
    assert len(simulate(WorldSpec(seed=1, **{k: v for k, v in world.items() if k in WorldSpec.__dataclass_fields__}
                                  )).videos) == pytest.approx(videos, abs=world["n_hashtags"])   # the formula holds
    assert dry_run_counts(tmp_path)["sample_frames"] == math.ceil(videos / 1500) == 6  # the default world: 7,650
    counts = dry_run_counts(tmp_path, "--config", "videos_per_shard=1000")
    assert counts["sample_frames"] == counts["image_features"] == math.ceil(videos / 1000)
    paper = yaml.safe_load((REPO / "config" / "paper_scale.yaml").read_text())["world"]
    paper_videos = expected_videos(paper["n_hashtags"], paper["videos_per_hashtag"], paper["n_sponsored"],
                                   paper["videos_per_campaign"])
    assert abs(paper_videos - 518_303) < 10
    assert dry_run_counts(tmp_path, "--configfile", str(REPO / "config" / "paper_scale.yaml"),
                          "--until", "sample_frames")["sample_frames"] == math.ceil(paper_videos / 1500)


def test_auto_shards_count_the_users_media_files(tmp_path):
    scrapes = tmp_path / "scrapes"
    (scrapes / "items").mkdir(parents=True)
    (scrapes / "media").mkdir()
    for i in range(7):
        (scrapes / "media" / f"{i}.mp4").write_bytes(b"")
    (scrapes / "media" / "notes.txt").write_text("not a video")
    counts = dry_run_counts(tmp_path, "--config", f"scrapes={{dir: {scrapes}}}", "videos_per_shard=3",
                            "--until", "sample_frames")
    assert counts["sample_frames"] == 3  # ceil(7 / 3)


def test_slurm_profile_covers_the_gpu_rules_and_unknown_rules_are_harmless(tmp_path):
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "profile.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["retries"] >= 1
    sets = profile["set-resources"]
    for rule in ("image_features", "audio_features", "train_vsvae", "train_causal"):
        assert sets[rule]["gpu"] == 1 and sets[rule]["cpus_per_gpu"] >= 1 and sets[rule]["slurm_partition"] == "gpu"
    # memory grows with the attempt number wherever it is set
    for res in [profile["default-resources"], *sets.values()]:
        if "mem_mb" in res:
            assert "attempt" in str(res["mem_mb"])
    # The profile names rules that may not be part of the workflow (train_causal while causal.smk is not included):
    # Snakemake accepts it and plans the same jobs as without the profile.
    with_profile = dry_run_counts(tmp_path, "--workflow-profile", str(REPO / "profiles" / "slurm"))
    assert with_profile == dry_run_counts(tmp_path)


def _write_run(root: Path, value: float, log: str, seconds: float = 1.0) -> None:
    (root / "results" / "t").mkdir(parents=True)
    (root / "results" / "logs").mkdir(parents=True)
    pd.DataFrame({"v": [1.0, value], "s": ["a", "b"]}).to_parquet(root / "results" / "t" / "x.parquet")
    np.savez(root / "results" / "t" / "a.npz", x=np.array([np.nan, value]), i=np.arange(3))
    (root / "results" / "t" / "m.json").write_text(json.dumps({"n": 2, "v": value, "timing": {"seconds": seconds}}))
    (root / "results" / "logs" / "r.log").write_text(log)


def test_compare_finds_a_changed_value_and_ignores_logs_and_timings(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _write_run(a, 0.5, "10:00 started")
    _write_run(b, 0.5, "10:07 started", seconds=3.5)  # timings differ, values do not
    _write_run(c, 0.5000001, "10:00 started")
    counts, problems = compare.compare(a, b)
    assert problems == [] and counts == {"compared": 3, "excluded": 1}
    _, problems = compare.compare(a, c)
    assert sorted(p.split(":")[0] for p in problems) == ["results/t/a.npz", "results/t/m.json", "results/t/x.parquet"]
    (c / "results" / "t" / "extra.csv").write_text("1\n")
    assert "only in the Slurm run: results/t/extra.csv" in compare.compare(c, a)[1]


@pytest.mark.workflow
@pytest.mark.skipif(os.environ.get("REACH_TEST_SLURM") != "1",
                    reason="needs root and starts Slurm daemons: set REACH_TEST_SLURM=1 (or run make test-slurm)")
def test_tiny_workflow_on_a_real_one_node_slurm_matches_the_local_run(tmp_path):
    out = subprocess.run(["bash", str(REPO / "tests" / "slurm" / "run.sh"), str(tmp_path)], capture_output=True,
                         text=True, timeout=3600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "0 differences" in out.stdout and "PASS" in out.stdout
