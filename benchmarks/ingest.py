"""Ingestion throughput (records/s) at the default scale and at 10x without media; world simulation and media
rendering rates alongside. Prints figures and ratios; asserts nothing.

    .venv/bin/python benchmarks/ingest.py [--scale 10] [--seed 20201001] [--render 40]

The default-scale figure uses the workflow's own scrapes (results/synthetic/scrapes, with media checks) when
`make` has produced them, else a freshly simulated world without media.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import yaml

from reach.scrape.ingest import ingest
from reach.synthetic.media import media_plan, render_audio, render_frames, write_mp4
from reach.synthetic.scrapes import write_scrapes
from reach.synthetic.world import WorldSpec, simulate

REPO = Path(__file__).resolve().parents[1]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def bench_ingest(root: Path, require_media: bool, label: str) -> float:
    result, seconds = timed(ingest, root, require_media=require_media)
    n = result.summary["records"]["read"]
    rate = n / seconds
    print(f"{label:<34} {n:>10,d} records {result.summary['videos']['accepted']:>8,d} videos "
          f"{seconds:8.1f} s {rate:10,.0f} records/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    config = yaml.safe_load((REPO / "workflow_config.yaml").read_text())
    parser.add_argument("--scale", type=int, default=10, help="multiple of the default videos per hashtag")
    parser.add_argument("--seed", type=int, default=config["seed"])
    parser.add_argument("--render", type=int, default=40, help="videos to render for the media rate")
    args = parser.parse_args()
    fields = {f.name for f in dataclasses.fields(WorldSpec)}
    base = WorldSpec(seed=args.seed, **{k: v for k, v in config["world"].items() if k in fields})
    print(f"cores: {os.cpu_count()}  default world: {base.n_hashtags} hashtags x {base.videos_per_hashtag} videos")

    rates = {}
    own = REPO / "results" / "synthetic" / "scrapes"
    with tempfile.TemporaryDirectory() as tmp:
        if (own / "items").is_dir() and (own / "media").is_dir():
            rates["default"] = bench_ingest(own, True, "ingest, default (workflow, media)")
        else:
            world, t_sim = timed(simulate, base)
            _, t_write = timed(write_scrapes, world, base, Path(tmp) / "default")
            print(f"simulate default: {t_sim:.1f} s, write scrapes: {t_write:.1f} s")
            rates["default"] = bench_ingest(Path(tmp) / "default", False, "ingest, default (no media)")

        big = dataclasses.replace(base, videos_per_hashtag=base.videos_per_hashtag * args.scale)
        world, t_sim = timed(simulate, big)
        _, t_write = timed(write_scrapes, world, big, Path(tmp) / "big")
        print(f"simulate {args.scale}x: {t_sim:.1f} s ({len(world.videos):,d} videos), write scrapes: {t_write:.1f} s")
        rates["big"] = bench_ingest(Path(tmp) / "big", False, f"ingest, {args.scale}x (no media)")
        del world

        small = dataclasses.replace(base, n_hashtags=10, videos_per_hashtag=max(4, args.render // 10))
        plan = media_plan(simulate(small), 1).head(args.render)
        start = time.perf_counter()
        seconds_of_video = 0.0
        for _, row in plan.iterrows():
            frames = render_frames(row, config["world"]["media_fps"], config["world"]["media_width"],
                                   config["world"]["media_height"], args.seed)
            write_mp4(frames, render_audio(row, args.seed, None), config["world"]["media_fps"],
                      Path(tmp) / f"{row['video_id']}.mp4")
            seconds_of_video += row["duration"]
        t_render = time.perf_counter() - start
        print(f"render media: {len(plan) / t_render:.1f} videos/s on one core "
              f"({seconds_of_video / t_render:.0f} s of video per s)")

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ratio {args.scale}x / default throughput: {rates['big'] / rates['default']:.2f}")
    print(f"peak RSS: {peak_mb:,.0f} MB")
    print(json.dumps({"ingest_records_per_s": rates, "peak_rss_mb": round(peak_mb)}))


if __name__ == "__main__":
    main()
