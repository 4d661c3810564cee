"""Validating the representations (Section 3.1, "Validating the Representations"; Table 2, Figure 5).

* Table 2: out-of-sample (test split) reconstruction from r = mu (the posterior mean) — text word accuracy (share of
  word positions whose most probable reconstructed word is the original word), image MSE averaged over all frames,
  object/sentiment-vector MSE, audio MSE, editing MSE — for the VS-VAE and for the no-information rate (NIR: "predict
  the mean value for every feature", the training split's mean; for words the training split's most frequent word
  at each position of each source). MSEs are in the model's standardised units (sd of the training split) and,
  for reference, in the features' raw units.
* Probe (evaluation only, reads the synthetic truth): cross-validated R^2 of the same ridge probe from r and from
  the raw concatenated features to the true content latent.
* Neighbours: k nearest videos in r; how often they share the hashtag and the true content (pair distance in true
  content below the 10th percentile of random pairs' distances), against random pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reach.represent.data import TEXT_SOURCES, UNK, VSVAEData


def text_nir_ids(data: VSVAEData, train_rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per source, the training split's most frequent word id at each position (the source's most frequent word
    where no training text reaches that position)."""
    out = {}
    for s in TEXT_SOURCES:
        ids, lens = data.text_ids[s][train_rows], data.text_lengths[s][train_rows]
        L = ids.shape[1]
        mask = np.arange(L)[None, :] < lens[:, None]
        V = len(data.vocab)
        overall = np.bincount(ids[mask], minlength=V)
        fallback = int(overall.argmax()) if overall.sum() else 1
        modes = np.full(L, fallback, dtype=np.int64)
        for pos in range(L):
            col = ids[mask[:, pos], pos]
            if col.size:
                modes[pos] = int(np.bincount(col, minlength=V).argmax())
        out[s] = modes
    return out


def _mse(pred: np.ndarray, true: np.ndarray, mask: np.ndarray, sd: np.ndarray | None = None) -> tuple[float, int]:
    err = pred - true
    if sd is not None:
        err = err * sd
    m = mask.astype(bool)
    return (float((err[m] ** 2).mean()) if m.any() else float("nan")), int(m.sum())


def table2(data: VSVAEData, recon: dict[str, np.ndarray], rows: np.ndarray, train_rows: np.ndarray) -> pd.DataFrame:
    """Table 2 on `rows` (the test split) from `recon` = reconstruct(model, data, rows)."""
    records = []
    nir_ids = text_nir_ids(data, train_rows)
    correct = {"vsvae": 0, "nir": 0}
    total, unknown_total = 0, 0
    for s in TEXT_SOURCES:
        ids, lens = data.text_ids[s][rows], data.text_lengths[s][rows]
        mask = np.arange(ids.shape[1])[None, :] < lens[:, None]
        n_words = int(mask.sum())
        # a word outside the training vocabulary (<unk>) counts in the total and is never a match: the original word
        # cannot be reconstructed, and "<unk>" for "<unk>" is no matching word
        known = mask & (ids != UNK)
        hit_v = int(((recon[f"{s}_ids"] == ids) & known).sum())
        hit_n = int(((nir_ids[s][None, :] == ids) & known).sum())
        unknown = n_words - int(known.sum())
        correct["vsvae"] += hit_v
        correct["nir"] += hit_n
        total += n_words
        unknown_total += unknown
        records.append({"modality": f"text_{s}", "metric": "word accuracy", "vsvae": hit_v / n_words if n_words
                        else np.nan, "nir": hit_n / n_words if n_words else np.nan, "n_values": n_words,
                        "unknown_share": unknown / n_words if n_words else np.nan})
    records.insert(0, {"modality": "text", "metric": "word accuracy", "vsvae": correct["vsvae"] / max(total, 1),
                       "nir": correct["nir"] / max(total, 1), "n_values": total,
                       "unknown_share": unknown_total / max(total, 1)})
    fmask = (np.arange(data.frames.shape[1])[None, :] < data.n_frames[rows][:, None])
    fmask3 = np.broadcast_to(fmask[..., None], data.frames[rows].shape)
    true_frames = data.frames[rows]
    sd = data.scalers["frames"].sd
    # "For image, we average the fit statistic over all image frames": every frame weighs the same
    per_frame_v = ((recon["frames"] - true_frames) ** 2).mean(2)[fmask]
    per_frame_n = (true_frames ** 2).mean(2)[fmask]
    per_frame_v_raw = (((recon["frames"] - true_frames) * sd) ** 2).mean(2)[fmask]
    per_frame_n_raw = ((true_frames * sd) ** 2).mean(2)[fmask]
    records.append({"modality": "image", "metric": "MSE (average over frames)", "vsvae": per_frame_v.mean(),
                    "nir": per_frame_n.mean(), "vsvae_raw": per_frame_v_raw.mean(), "nir_raw": per_frame_n_raw.mean(),
                    "n_values": int(fmask3.sum())})
    for name, key, mask_key in (("image_vector", "image_vector", "image_vector_mask"), ("audio", "audio", "audio_mask"),
                                ("editing", "editing", "editing_mask")):
        true = getattr(data, key)[rows]
        mask = getattr(data, mask_key)[rows]
        sd = data.scalers[key].sd
        v, cnt = _mse(recon[key], true, mask)
        nir, _ = _mse(np.zeros_like(true), true, mask)
        v_raw, _ = _mse(recon[key], true, mask, sd)
        nir_raw, _ = _mse(np.zeros_like(true), true, mask, sd)
        label = "image_objects" if name == "image_vector" else name
        records.append({"modality": label, "metric": "MSE", "vsvae": v, "nir": nir, "vsvae_raw": v_raw,
                        "nir_raw": nir_raw, "n_values": cnt})
    df = pd.DataFrame(records)
    higher_better = df["metric"].eq("word accuracy")
    df["beats_nir"] = np.where(higher_better, df["vsvae"] > df["nir"], df["vsvae"] < df["nir"])
    df["units"] = np.where(higher_better, "share of words", "sd units (training split)")
    df["n_videos"] = len(rows)
    cols = ["modality", "metric", "vsvae", "nir", "beats_nir", "units", "vsvae_raw", "nir_raw", "n_videos", "n_values",
            "unknown_share"]
    return df.reindex(columns=cols)


# -- probe -----------------------------------------------------------------------------------------------------
def raw_feature_matrix(arrays: dict[str, dict[str, np.ndarray]], max_columns: int, seed: int) -> np.ndarray:
    """The raw concatenated features as the features stage probes them (reach.features.probe): per modality a
    fixed-width matrix, imputed and standardised, wide ones reduced to `max_columns` principal components."""
    from reach.features.probe import impute_standardise, modality_matrix, reduce_width

    return np.column_stack([reduce_width(impute_standardise(modality_matrix(m, arrays[m])), max_columns, seed)
                            for m in ("text", "image", "audio", "editing")])


def probe_table(r: np.ndarray, raw: np.ndarray, truth: np.ndarray, targets: list[str], folds: int,
                seed: int) -> pd.DataFrame:
    """Cross-validated R^2 of the same ridge probe from r and from the raw features to each true content dim."""
    from reach.features.probe import cv_r2, impute_standardise

    R = impute_standardise(r)
    r2_r = cv_r2(R, truth, folds, seed)
    r2_raw = cv_r2(raw, truth, folds, seed)
    rng = np.random.default_rng(seed)
    r2_null = cv_r2(R, truth[rng.permutation(len(truth))], folds, seed)
    rows = []
    for name, a, b, c in zip(list(targets) + ["mean"], list(r2_r) + [r2_r.mean()], list(r2_raw) + [r2_raw.mean()],
                             list(r2_null) + [r2_null.mean()]):
        rows.append({"target": name, "r2_from_r": a, "r2_from_raw_features": b, "r2_from_r_shuffled_target": c,
                     "r_at_least_raw": bool(a >= b), "n_videos": len(truth), "n_inputs_r": R.shape[1],
                     "n_inputs_raw": raw.shape[1]})
    return pd.DataFrame(rows)


# -- neighbours ------------------------------------------------------------------------------------------------
def nearest(X: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of the k nearest rows of X to each query row (the query itself excluded)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=min(k + 1, len(X))).fit(X)
    dist, idx = nn.kneighbors(X[queries])
    out_i = np.zeros((len(queries), k), dtype=np.int64)
    out_d = np.zeros((len(queries), k))
    for row, q in enumerate(queries):
        keep = idx[row] != q
        out_i[row] = idx[row][keep][:k]
        out_d[row] = dist[row][keep][:k]
    return out_i, out_d


def neighbour_rates(X: dict[str, np.ndarray], hashtag: np.ndarray, content: np.ndarray, queries: np.ndarray,
                    k: int, seed: int, near_quantile: float = 0.1) -> pd.DataFrame:
    """For each representation in X (name -> matrix) and for random pairs: the share of (query, neighbour) pairs
    with the same hashtag, the share whose true-content distance is below the `near_quantile` quantile of random
    pairs' distances, and the mean true-content distance."""
    rng = np.random.default_rng(seed)
    n = len(hashtag)
    rand = rng.integers(0, n - 1, size=(len(queries), k))
    rand = rand + (rand >= queries[:, None])  # never the query itself
    d_rand = np.linalg.norm(content[queries][:, None, :] - content[rand], axis=2)
    threshold = float(np.quantile(d_rand, near_quantile))
    pairs = {"random pairs": rand}
    for name, M in X.items():
        pairs[name] = nearest(M, queries, k)[0]
    rows = []
    for name, nb in pairs.items():
        d = np.linalg.norm(content[queries][:, None, :] - content[nb], axis=2)
        rows.append({"neighbours_in": name, "k": k, "n_queries": len(queries),
                     "same_hashtag_rate": float((hashtag[nb] == hashtag[queries][:, None]).mean()),
                     "content_near_rate": float((d < threshold).mean()),
                     "mean_content_distance": float(d.mean()), "near_threshold": threshold,
                     "near_quantile": near_quantile})
    return pd.DataFrame(rows)


def focal_neighbours(r: np.ndarray, video_id: np.ndarray, hashtag: np.ndarray, split: np.ndarray, n_hashtags: int,
                     per_hashtag: int, k: int, seed: int) -> pd.DataFrame:
    """Figure 5: `per_hashtag` focal test videos in each of `n_hashtags` randomly chosen hashtags and their k nearest
    neighbours in r (among all videos). Rank 0 is the focal video itself."""
    rng = np.random.default_rng(seed)
    test = np.flatnonzero(split == "test")
    tags = np.array(sorted(set(hashtag[test])))
    chosen = rng.choice(tags, size=min(n_hashtags, len(tags)), replace=False)
    rows = []
    for tag in chosen:
        pool = test[hashtag[test] == tag]
        focal = rng.choice(pool, size=min(per_hashtag, len(pool)), replace=False)
        idx, dist = nearest(r, focal, k)
        for f, nb, dd in zip(focal, idx, dist):
            rows.append({"focal_hashtag": tag, "focal_video_id": video_id[f], "rank": 0, "video_id": video_id[f],
                         "hashtag": hashtag[f], "distance": 0.0, "split": split[f]})
            for rank, (j, dj) in enumerate(zip(nb, dd), start=1):
                rows.append({"focal_hashtag": tag, "focal_video_id": video_id[f], "rank": rank,
                             "video_id": video_id[j], "hashtag": hashtag[j], "distance": float(dj),
                             "split": split[j]})
    return pd.DataFrame(rows)


def load_frames(frame_files: list[str], video_ids: set[str]) -> dict[str, np.ndarray]:
    """Key frames (m, H, W, 3) uint8 of the requested videos from the media stage's frame shards."""
    out = {}
    for path in frame_files:
        with np.load(path, allow_pickle=False) as z:
            ids = z["video_id"].astype(str)
            want = [i for i, v in enumerate(ids) if v in video_ids]
            if not want:
                continue
            off = z["frames__offsets"]
            frames = z["frames"]
            for i in want:
                out[ids[i]] = frames[off[i]: off[i + 1]]
    return out


def contact_sheet(path: str, table: pd.DataFrame, frames: dict[str, np.ndarray], n_frames: int = 5) -> None:
    """One PNG: a row per video (the focal video, then its neighbours), `n_frames` evenly spaced key frames each,
    labelled with rank, video id, hashtag and distance in r."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(table)
    fig, axes = plt.subplots(n, n_frames, figsize=(1.3 * n_frames, 2.1 * n), squeeze=False)
    for row, rec in enumerate(table.itertuples()):
        fr = frames.get(str(rec.video_id))
        picks = (np.unique(np.linspace(0, len(fr) - 1, n_frames).round().astype(int))
                 if fr is not None and len(fr) else [])
        for col in range(n_frames):
            ax = axes[row, col]
            ax.set_axis_off()
            if col < len(picks):
                ax.imshow(fr[picks[col]])
        label = ("focal" if rec.rank == 0 else f"#{rec.rank} (d={rec.distance:.2f})")
        axes[row, 0].set_title(f"{label}  {rec.video_id}  #{rec.hashtag}", fontsize=6, loc="left")
        if fr is None:
            axes[row, 0].text(0.5, 0.5, "no frames", ha="center", va="center", fontsize=7,
                              transform=axes[row, 0].transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
