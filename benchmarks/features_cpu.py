"""CPU seconds per video of the audio_features and text_features rules, old vs new implementation, per component.

    .venv/bin/python benchmarks/features_cpu.py [--videos N] [--shard S] [--repeat R]

Inputs: the first N videos (default 100) of results/media/audio/shard-S.npz and the speech segments of
results/features/shards/audio-S.npz (the default world's run) when they exist, else N synthetic 15-s tracks (tone,
beat and noise; seed 0; no speech segments). CPU time (time.process_time, one thread), not wall. Old and new run
in turn R times (default 3) and each per-video figure is the least of its R runs; start-up figures are single runs.
"old" is the implementation before the speed-up, kept in the library as the tests' oracle
(load_musicnn(reference=True) with musicnn_patches_reference; acoustic_features and modulation_profile_reference
each on their own STFT); "new" is what the rules run now. The outputs of both are compared (they must be
identical) and the check is printed.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


REPEAT = 1


def pair(f_old, f_new):
    """((old result, new result), (old CPU s, new CPU s)): the two run in turn REPEAT times, least time of each."""
    best = [float("inf"), float("inf")]
    out = [None, None]
    for _ in range(REPEAT):
        for k, f in enumerate((f_old, f_new)):
            t = time.process_time()
            out[k] = f()
            best[k] = min(best[k], time.process_time() - t)
    return tuple(out), tuple(best)


def cpu(f):
    """(result, CPU seconds): the least of REPEAT runs, the usual estimate on a machine shared with other jobs."""
    best = float("inf")
    for _ in range(REPEAT):
        t = time.process_time()
        out = f()
        best = min(best, time.process_time() - t)
    return out, best


def load_inputs(n: int, shard: int):
    audio = ROOT / f"results/media/audio/shard-{shard}.npz"
    sound = ROOT / f"results/features/shards/audio-{shard}.npz"
    if audio.is_file():
        with np.load(audio, allow_pickle=False) as d:
            off = d["wave__offsets"][: n + 1]
            wave = d["wave"][: off[-1]]
            rate = int(d["meta_rate"][0])
        waves = [wave[off[i]:off[i + 1]].astype(np.float32) / 32767.0 for i in range(len(off) - 1)]
        segments = []
        if sound.is_file():
            with np.load(sound, allow_pickle=False) as s:
                for i in range(len(waves)):
                    if s["speech_detected"][i]:
                        a, b = float(s["speech_start_s"][i]), float(s["speech_end_s"][i])
                        segments.append(waves[i][int(a * rate):int(b * rate)])
        return waves, rate, segments, f"default world, shard {shard}, first {len(waves)} videos"
    rng = np.random.default_rng(0)
    rate = 16_000
    t = np.arange(15 * rate) / rate
    waves = [(0.3 * np.sin(2 * np.pi * rng.uniform(200, 600) * t) * np.exp(-3 * ((t * rng.uniform(1.5, 3)) % 1))
              + 0.02 * rng.normal(size=t.size)).astype(np.float32) for _ in range(n)]
    return waves, rate, [], f"{n} synthetic 15-s tracks (no results/ found)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=100)
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="runs per component; the least CPU time is reported")
    args = ap.parse_args()
    global REPEAT

    from reach.features.audio import (acoustic_features, load_musicnn, musicnn_patches,
                                      musicnn_patches_reference)
    from reach.features.speech import (Transcriber, detect_speech_rhythm, frame_spectrum, modulation_profile,
                                       modulation_profile_reference)
    from reach.features.text import _wordsegment, embed, load_word_vectors, tokenize

    waves, rate, segments, what = load_inputs(args.videos, args.shard)
    n = len(waves)
    print(f"inputs: {what}; {sum(w.size for w in waves) / rate / n:.1f} s of audio per video; "
          f"{len(segments)} speech segments")

    start = {}
    _, start["TF import + musicnn graph (new)"] = cpu(lambda: load_musicnn(threads=1, max_patches=3))
    new_model = load_musicnn(threads=1, max_patches=3)
    old_model, start["musicnn graph, 2nd (old)"] = cpu(lambda: load_musicnn(threads=1, max_patches=3,
                                                                           reference=True))
    wv, start["GloVe 6B 50-d load"] = cpu(lambda: load_word_vectors(None))
    _, start["wordsegment load"] = cpu(_wordsegment)
    tr, start["pocketsphinx decoder"] = cpu(lambda: Transcriber(rate))
    # warm-up: librosa's lazy submodules and numba caches load on first use (start-up, not per video)
    _, start["librosa first use (lazy imports)"] = cpu(lambda: (acoustic_features(waves[0], rate),
                                                                 musicnn_patches(waves[0], rate, 3),
                                                                 musicnn_patches_reference(waves[0], rate, 3)))
    old_model.track_means(waves[:2])
    new_model.track_means(waves[:2])

    REPEAT = max(1, args.repeat)
    rows, checks = [], {}
    chunk = 32
    (p_old, p_new), (t_po, t_pn) = pair(lambda: [musicnn_patches_reference(w, rate, 3) for w in waves],
                                        lambda: [musicnn_patches(w, rate, 3) for w in waves])
    checks["musicnn patches"] = all(np.array_equal(a, b) for a, b in zip(p_old, p_new))
    rows.append(("audio", "musicnn mel patches (3 per track)", t_po, t_pn))
    allp = np.concatenate(p_new)
    (s_old, s_new), (t_so, t_sn) = pair(lambda: old_model.patch_scores(allp), lambda: new_model.patch_scores(allp))
    checks["musicnn patch probabilities"] = np.array_equal(s_old, s_new)
    rows.append(("audio", f"musicnn TF predict ({allp.shape[0]} patches)", t_so, t_sn))
    m_old = np.concatenate([old_model.track_means(waves[c:c + chunk]) for c in range(0, n, chunk)])
    m_new = np.concatenate([new_model.track_means(waves[c:c + chunk]) for c in range(0, n, chunk)])
    checks["sound classes (track means, chunks of 32)"] = np.array_equal(m_old, m_new, equal_nan=True)

    def acoustic_speech_old():
        out = []
        for w in waves:
            a = acoustic_features(w, rate)
            starts, shares = modulation_profile_reference(w, rate, 1.5)
            out.append((a, starts, shares))
        return out

    def acoustic_speech_new():
        out = []
        for w in waves:
            stft = frame_spectrum(w)
            a = acoustic_features(w, rate, spectrum=stft[::2])
            starts, shares = modulation_profile(w, rate, 1.5, spectrum=stft)
            out.append((a, starts, shares))
        return out

    (as_old, as_new), (t_ao, t_an) = pair(acoustic_speech_old, acoustic_speech_new)
    checks["acoustic features + speech modulation profile"] = all(
        np.array_equal(a[0], b[0], equal_nan=True) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
        for a, b in zip(as_old, as_new))
    checks["speech segments"] = all(detect_speech_rhythm(w, rate, 0.4, 1.5, 6.0) ==
                                    detect_speech_rhythm(w, rate, 0.4, 1.5, 6.0, spectrum=frame_spectrum(w))
                                    for w in waves[:20])
    rows.append(("audio", "acoustic features + speech detector", t_ao, t_an))
    audio_old, audio_new = t_po + t_so + t_ao, t_pn + t_sn + t_an
    rows.append(("audio", "RULE PER-VIDEO TOTAL", audio_old, audio_new))

    t0 = time.process_time()
    for seg in segments:                     # once: the decoder's history (live CMN) changes later transcripts
        tr.transcribe(seg)
    t_tr = time.process_time() - t0
    rows.append(("text", f"pocketsphinx ({len(segments)} segments; unchanged)", t_tr, t_tr))
    rng = np.random.default_rng(0)
    words = list(wv.index)[1000:6000]
    texts = [" ".join(rng.choice(words, 20)) + " #HomeOffice #RetroGaming" for _ in range(n)]
    _, t_tok = cpu(lambda: [embed(tokenize(t, True), wv) for t in texts])
    rows.append(("text", "tokenise + embed (1 caption-like text; unchanged)", t_tok, t_tok))
    rows.append(("text", "RULE PER-VIDEO TOTAL", t_tr + t_tok, t_tr + t_tok))

    print("\nstart-up per shard (CPU s, paid once per job):")
    for k, v in start.items():
        print(f"  {k:<45s} {v:7.2f}")
    print(f"\nper video (CPU s/video over {n} videos)      old       new    old/new")
    for rule, name, a, b in rows:
        print(f"  {rule:<5s} {name:<50s} {a / n:8.4f}  {b / n:8.4f}  {a / b if b > 0 else float('nan'):6.2f}x")
    print("\noutputs old vs new identical:")
    for k, v in checks.items():
        print(f"  {k:<50s} {'yes' if v else 'NO'}")
    if not all(checks.values()):
        raise SystemExit("old and new outputs differ")


if __name__ == "__main__":
    main()
