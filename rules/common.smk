# Shared helpers: config validation, the package digest that makes library edits rerun rules, scrape paths.
import hashlib
from pathlib import Path

from snakemake.utils import validate


validate(config, "workflow_config.schema.yaml")

SYNTHETIC_SCRAPES = "results/synthetic/scrapes"
N_SHARDS = config["shards"]
SHARDS = list(range(N_SHARDS))


def package_digest(*parts):
    """SHA-256 over the library code a rule runs (src/reach/<part> for each part, plus the shared top-level
    modules; all of src/reach/ when no part is named). Passed as a param, so that editing that code -- and only
    that code -- reruns the rule."""
    root = Path(workflow.basedir) / "src" / "reach"
    if parts:
        paths = [p for p in root.glob("*.py")]
        for part in parts:
            paths += [p for p in (root / part).rglob("*") if p.is_file()] if (root / part).is_dir() else [root / part]
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
