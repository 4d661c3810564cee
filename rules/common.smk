# Shared helpers: config validation, the package digest that makes library edits rerun rules, scrape paths.
import hashlib
from pathlib import Path

from snakemake.utils import validate


validate(config, "workflow_config.schema.yaml")

SYNTHETIC_SCRAPES = "results/synthetic/scrapes"
N_SHARDS = config["shards"]
SHARDS = list(range(N_SHARDS))


def package_digest():
    """SHA-256 over src/reach/**/*.py and *.stan: a param, so that editing library code reruns the rule."""
    root = Path(workflow.basedir) / "src" / "reach"
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".stan") and path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def use_synthetic_world():
    return config["scrapes"]["dir"] is None


def scrapes_dir():
    return SYNTHETIC_SCRAPES if use_synthetic_world() else config["scrapes"]["dir"]


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
