"""Rule simulate_world: draw the synthetic world, write it as raw scrapes, the truth, and the media plan."""

import dataclasses
import json
from pathlib import Path

import numpy as np

from reach.logs import setup_logging
from reach.synthetic.media import media_plan
from reach.synthetic.scrapes import write_scrapes
from reach.synthetic.world import WorldSpec, simulate, truth_tables

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "simulate_world")
world_cfg = dict(smk.params.world)
fields = {f.name for f in dataclasses.fields(WorldSpec)}
spec = WorldSpec(seed=int(smk.params.seed), **{k: v for k, v in world_cfg.items() if k in fields})
log.info("simulating %s", spec)

world = simulate(spec)
log.info("%d hashtags, %d creators, %d videos, %d listing rows", len(world.hashtags), len(world.creators),
         len(world.videos), len(world.listings))
scrapes_dir = Path(smk.output.items_dir).parent
junk, line_index, missing_media = write_scrapes(world, spec, scrapes_dir)
log.info("wrote scrapes to %s (%d junk records injected, %d videos without media)", scrapes_dir,
         int((junk["kind"] != "media_missing").sum()), len(missing_media))

grid_cfg = smk.params.follower_grid
grid = np.linspace(np.log(grid_cfg["min_followers"]), np.log(grid_cfg["max_followers"]), int(grid_cfg["n"]))
tables = truth_tables(world, grid)
tables["videos"].assign(media_missing=[j in missing_media for j in range(len(world.videos))]) \
    .to_parquet(smk.output.truth_videos, index=False)
tables["fei_grid"].to_parquet(smk.output.truth_fei, index=False)
tables["campaign_tiers"].to_parquet(smk.output.truth_campaigns, index=False)
tables["hashtags"].to_parquet(smk.output.truth_hashtags, index=False)
junk.to_parquet(smk.output.truth_junk, index=False)

plan = media_plan(world, int(smk.params.n_shards))
plan["render"] = [j not in missing_media for j in range(len(plan))]
if not world_cfg.get("media", True):
    plan = plan.iloc[0:0]
plan.to_parquet(smk.output.media_plan, index=False)

v = world.videos
facts = {
    "spec": dataclasses.asdict(spec),
    "n_videos": int(len(v)), "n_hashtags": int(len(world.hashtags)), "n_creators": int(len(world.creators)),
    "median_followers": float(v["followers"].median()), "mean_followers": float(v["followers"].mean()),
    "median_impressions": float(v["impressions"].median()), "mean_impressions": float(v["impressions"].mean()),
    "corr_log_past_hearts_log_followers_creators": float(np.corrcoef(world.creators["log_past_hearts_level"],
                                                                     np.log(world.creators["followers"]))[0, 1]),
    "log_followers_ref": float(np.log(60_000)),
    "follower_grid_log": grid.tolist(),
}
Path(smk.output.truth_world).write_text(json.dumps(facts, indent=2) + "\n")
log.info("truth written: %s", {k: facts[k] for k in facts if k.startswith(("median", "mean", "corr"))})
