# Shared helpers: config validation, the package digest that makes library edits rerun rules, scrape paths.
import hashlib
import math
import os
from pathlib import Path

from snakemake.utils import validate


validate(config, "workflow_config.schema.yaml")

SYNTHETIC_SCRAPES = "results/synthetic/scrapes"


def corpus_size():
    """Videos in the corpus, known before anything runs: the synthetic world's size from its shape, or
    the number of media/<id>.mp4 files of the user's scrapes (one directory listing, fast even at 518K files)."""
    if config["scrapes"]["dir"] is None:   # = reach.synthetic.world.expected_videos (tests/test_slurm.py checks)
        w = config["world"]
        if w["videos_per_campaign"] is None:
            return w["n_hashtags"] * w["videos_per_hashtag"]
        sponsored = min(w["n_sponsored"], w["n_hashtags"])
        return (w["n_hashtags"] - sponsored) * w["videos_per_hashtag"] + sponsored * w["videos_per_campaign"]
    media = Path(config["scrapes"]["dir"]) / "media"
    if not media.is_dir():
        raise ValueError(f"shards: auto counts the videos in {media}/, which does not exist; set shards to a number")
    with os.scandir(media) as entries:
        return sum(1 for e in entries if e.name.endswith(".mp4"))


def shard_count():
    """config shards, or with `shards: auto` ceil(videos / videos_per_shard): per-shard memory and runtime stay
    about constant as the corpus grows (default world: 5,280 videos / 1,500 -> 4 shards; paper: 518,303 -> 346)."""
    if config["shards"] != "auto":
        return config["shards"]
    return max(1, min(4096, math.ceil(corpus_size() / config["videos_per_shard"])))


N_SHARDS = shard_count()
SHARDS = list(range(N_SHARDS))


def package_digest(*parts):
    """SHA-256 over the library code that a job executes, i.e. the named parts of src/reach/ (sub-packages or modules, e.g.
    "synthetic", "tiers.py") plus __init__.py and logs.py; all of src/reach/ when no part is named. Passed as
    a param, so that editing that code (and only that code) triggers a rerun."""
    root = Path(workflow.basedir) / "src" / "reach"
    if parts:
        paths = [root / "__init__.py", root / "logs.py"]
        for part in parts:
            target = root / part
            if not target.exists():
                raise ValueError(f"package_digest: no {target}")
            paths += [p for p in target.rglob("*") if p.is_file()] if target.is_dir() else [target]
    else:
        paths = [p for p in root.rglob("*") if p.is_file()]
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        if path.suffix in (".py", ".stan"):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def use_synthetic_world():
    return config["scrapes"]["dir"] is None


def use_simulated_promotion_logs():
    """The promotion logs are simulated unless diffusion.promotion_logs.dir names the user's own (independently of
    whether the video world is synthetic)."""
    return config["diffusion"]["promotion_logs"]["dir"] is None


def scrapes_dir():
    return SYNTHETIC_SCRAPES if use_synthetic_world() else config["scrapes"]["dir"]


def scrape_folder_digest():
    """For a user's scrape folder: SHA-256 over the name, size and modification time of every file in items/,
    creators/, labels/ and media/ (a directory's own time changes only when entries come or go, so appending to a
    day's file or replacing a post list would not rerun ingestion). Passed as a param; empty for the synthetic
    world, whose files are rule outputs."""
    if use_synthetic_world():
        return ""
    digest = hashlib.sha256()
    root = Path(config["scrapes"]["dir"])
    for sub in ("items", "creators", "labels", "media"):
        folder = root / sub
        if not folder.is_dir():
            continue
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            info = entry.stat()
            digest.update(f"{sub}/{entry.name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def ingest_inputs(wildcards):
    """The synthetic world's outputs, or the user's scrape folders (tracked as plain inputs)."""
    if use_synthetic_world():
        inputs = {
            "items_dir": f"{SYNTHETIC_SCRAPES}/items",
            "creators_dir": f"{SYNTHETIC_SCRAPES}/creators",
            "labels": f"{SYNTHETIC_SCRAPES}/labels/engagement.csv",
        }
        if config["world"]["media"]:
            inputs["media"] = expand("results/synthetic/media/shard-{shard}.parquet", shard=SHARDS)
        return inputs
    root = Path(config["scrapes"]["dir"])
    return {"items_dir": str(root / "items")}


# Paper 2 promotion runs: one file pair per (policy, K, L, C-bar, replicate).
PROMO = config["promotion"]
PROMO_RUN = "results/promotion/runs/{policy}_K{K}_L{L}_C{cbar}_r{rep}"


def table1_runs(kind):
    return expand(
        f"{PROMO_RUN}.{kind}.parquet",
        policy=PROMO["policies"],
        K=PROMO["K"],
        L=PROMO["L"],
        cbar=PROMO["c_bars"],
        rep=PROMO["replicates"],
    )


def sweep_runs(kind):
    """Figure 5 runs (every K at one budget) and Figure 6 runs (every budget at one K), without repeats."""
    sweep = PROMO["l_sweep"]
    fig5 = expand(f"{PROMO_RUN}.{kind}.parquet", policy="AGA", K=sweep["K"], L=sweep["L"], cbar=sweep["c_bar"],
                  rep=sweep["replicates"])
    fig6 = expand(f"{PROMO_RUN}.{kind}.parquet", policy="AGA", K=sweep["budget_K"], L=sweep["L"],
                  cbar=sweep["c_bars"], rep=sweep["replicates"])
    return list(dict.fromkeys(fig5 + fig6))


def promotion_pq_inputs(wildcards):
    """The calibrated category estimates, when new videos draw their (p, q) from them."""
    if PROMO["pq_source"] == "estimates":
        return {"estimates": "results/diffusion/estimates.parquet"}
    return {}


def campaign_selections(wildcards):
    """One optimal-influencer table per sponsored campaign (the list is known once ingestion has run)."""
    import pandas as pd

    campaigns = pd.read_csv(checkpoints.list_campaigns.get().output[0], sep="\t")
    return expand("results/causal/selection/{campaign}.csv", campaign=campaigns["slug"])


def represent_truth(wildcards):
    """The synthetic world's truth for validate_representations' probe (evaluation only); none for user scrapes."""
    if use_synthetic_world():
        return {"truth": "results/synthetic/truth/videos.parquet"}
    return {}


def report_inputs(wildcards):
    """Every table and figure report/report.qmd loads, from the stages included in this workflow (the truth files
    only on the synthetic world); the per-campaign Figure 12 files once list_campaigns has run."""
    def outputs(name, *keys):
        if not hasattr(rules, name):
            return []
        out = getattr(rules, name).output
        return [getattr(out, k) for k in keys] if keys else list(out)

    synthetic = use_synthetic_world()
    inputs = {
        "ingest": outputs("ingest_scrapes", "videos", "summary", "rejected"),
        "features": [*FEATURE_TARGETS, *outputs("hashtag_topics", "hashtags")],
        "represent": [*outputs("validate_representations"), *outputs("train_vsvae", "manifest")],
        "growth": [*outputs("fit_growth_model"), *outputs("predict_growth_residuals", "table", "figure"),
                   *(outputs("check_growth_truth", "table", "figure") if synthetic else [])],
        "causal": [*outputs("iv_validity"), *outputs("fei_tables"), *outputs("gather_selection"),
                   *outputs("compare_estimators"),
                   *(outputs("check_fei_truth") if synthetic else [])],
        "diffusion": [*outputs("calibrate_diffusion"), *outputs("estimator_study"),
                      *(outputs("evaluate_diffusion_recovery", "summary") if use_simulated_promotion_logs() else [])],
        "promotion": outputs("benchmark_promotion"),
    }
    if synthetic and hasattr(rules, "fei_tables"):
        inputs["truth_campaigns"] = "results/synthetic/truth/campaign_tiers.parquet"
        if hasattr(rules, "check_fei_truth"):   # Table 4's truth over the data's follower range, beside the estimate
            inputs["truth_campaigns_on_support"] = "results/causal/truth_campaign_tiers.parquet"
    return inputs


def report_campaign_figures(wildcards):
    """Figure 12 of every sponsored campaign (known once the list_campaigns checkpoint has run)."""
    if not hasattr(rules, "select_influencer"):
        return []
    import pandas as pd

    listing = checkpoints.list_campaigns.get().output[0]
    campaigns = pd.read_csv(listing, sep="\t")
    return [listing, *expand("results/causal/selection/{campaign}_fig12.png", campaign=campaigns["slug"])]
