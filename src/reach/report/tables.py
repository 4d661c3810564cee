"""Display tables and notes for the report. Everything here only reads files that upstream rules wrote and formats
them; no estimation happens in the report."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

NOT_ENOUGH = "Not enough data in this run"
PAPER_VIDEOS = 518_303          # paper 1, Table 6 (N)

# Paper 1, Table 1 (followers, impressions) and Table 6 (post statistics): mean, sd, min, median, max
PAPER_TABLE1 = pd.DataFrame(
    [[486_169, 1_335_649, 2, 60_102, 71_000_679], [1_038_728, 2_468_832, 109, 4_444_500, 165_200_000]],
    index=["Followers", "Impressions"], columns=["Mean", "Std. Dev.", "Min", "Median", "Max"])
TABLE6_COLUMNS = {  # videos.parquet column -> paper's row name (Table 6)
    "num_hashtags": "Num Hashtags", "num_trending": "Num Trending", "has_fyp": "Has FYP",
    "hashtag_age": "Hashtag Age", "is_trending": "Is Trending", "ranking": "Ranking", "video_age": "Video Age",
    "is_sponsored": "Is sponsored", "is_verified": "Is verified",
}
PAPER_TABLE6 = pd.DataFrame(
    [[6.662, 3.275, 0, 6, 47], [1.078, 0.853, 0, 1, 10], [0.604, 0.489, 0, 1, 1], [6.003, 13.316, 0, 1, 148],
     [0.767, 0.423, 0, 1, 1], [1029, 586.495, 1, 1037, 2000], [35.212, 102.947, 0, 1.327, 2015],
     [0.001, 0.031, 0, 0, 1], [0.003, 0.171, 0, 0, 1]],
    index=list(TABLE6_COLUMNS.values()), columns=["Mean", "Std. Dev.", "Min", "Median", "Max"])
# Paper 1, Table 2 (VS-VAE vs the no-information rate)
PAPER_TABLE2 = {"text": (0.38, 0.04), "image": (10.81, 35.21), "audio": (0.97, 3.96), "editing": (0.69, 40.33)}


def missing(root: Path, paths: list[str]) -> list[str]:
    """The paths (relative to the run's working directory) that this run did not write."""
    return [p for p in paths if not (Path(root) / p).exists()]


def missing_note(paths: list[str], what: str = "this section") -> str:
    """The explicit message shown instead of a section whose inputs this run did not produce."""
    return f"{NOT_ENOUGH}: {what} needs {', '.join(paths)}, which this run did not write."


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def substitute_note(manifest: dict) -> str | None:
    """The note shown beside every number built on a feature extractor that is not the paper's model (DESIGN §5):
    None when the paper's model ran."""
    ext = manifest.get("extractor") or {}
    notes = []
    if ext.get("source") == "substitute":
        paper = manifest.get("paper_extractor") or "the paper's model"
        notes.append(f"Substitute model ran: {ext.get('name', 'an offline substitute')} in place of {paper}")
    for slot in ("sentiment", "word_vectors", "transcripts", "speech"):
        part = manifest.get(slot)
        if isinstance(part, dict) and str(part.get("source", "")).startswith(("substitute", "empty")):
            notes.append(f"{slot}: {part.get('name') or 'none'} ({part['source']})")
    return "; ".join(notes) or None


def feature_models(manifests: dict[str, dict]) -> pd.DataFrame:
    """One row per modality: which extractor produced the features, whether it is the paper's model, and the note."""
    rows = []
    for modality, m in manifests.items():
        ext = m.get("extractor") or {}
        rows.append({"modality": modality, "extractor": ext.get("name", ""), "source": ext.get("source", ""),
                     "paper model": m.get("paper_extractor", ""), "videos": m.get("n_videos"),
                     "device": ext.get("device", ""), "note": substitute_note(m) or ""})
    return pd.DataFrame(rows)


def describe(values: pd.Series) -> dict:
    v = pd.to_numeric(values, errors="coerce").astype(float).dropna()
    return {"N": int(v.size), "Mean": v.mean(), "Std. Dev.": v.std(ddof=1) if v.size > 1 else np.nan,
            "Min": v.min(), "Median": v.median(), "Max": v.max()}


def _beside_paper(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    out = ours.copy()
    for col in ("Mean", "Median"):
        out[f"{col} (paper)"] = paper.loc[out.index, col]
    return out


def table1(videos: pd.DataFrame) -> pd.DataFrame:
    """Paper 1, Table 1 for this run (followers at posting, impressions at day 14) beside the paper's values."""
    ours = pd.DataFrame({"Followers": describe(videos["followers"]),
                         "Impressions": describe(videos["impressions"])}).T
    return _beside_paper(ours, PAPER_TABLE1)


def table6(videos: pd.DataFrame) -> pd.DataFrame:
    """Paper 1, Table 6 (post statistics) for this run beside the paper's mean and median."""
    cols = [c for c in TABLE6_COLUMNS if c in videos.columns]
    ours = pd.DataFrame({TABLE6_COLUMNS[c]: describe(videos[c].astype(float)) for c in cols}).T
    return _beside_paper(ours, PAPER_TABLE6)


def ingest_counts(summary: dict, rejected_lines: int) -> pd.DataFrame:
    """Records read, accepted, rejected (per reason) and duplicated, as ingest_scrapes counted them."""
    rec = summary["records"]
    rows = [("records read", rec["read"]), ("accepted", rec["accepted"]), ("duplicates", rec["duplicates"]),
            ("rejected", rec["rejected"])]
    rows += [(f"  rejected: {reason}", n) for reason, n in sorted(rec.get("rejected_by_reason", {}).items())]
    vids = summary.get("videos", {})
    rows += [("videos accepted", vids.get("accepted")), ("videos rejected", vids.get("rejected"))]
    rows += [(f"  instrument from {k}", n) for k, n in sorted(vids.get("instrument_source", {}).items())]
    rows.append(("lines in rejected.jsonl", rejected_lines))
    return pd.DataFrame(rows, columns=["count", "value"])


def with_error(df: pd.DataFrame, estimate: str, truth: str, name: str | None = None) -> pd.DataFrame:
    """Adds `<name> error` = estimate - truth beside an estimate and its truth."""
    out = df.copy()
    out[f"{name or estimate} error"] = out[estimate] - out[truth]
    return out


def campaign_tiers_vs_truth(estimated: pd.DataFrame, truth: pd.DataFrame, tiers: list[str]) -> pd.DataFrame:
    """Table 4 on the synthetic world: each campaign's estimated tier FEI beside the true one, the absolute error
    per tier, and the estimated vs the true curve shape."""
    est = estimated.set_index("hashtag")
    true = truth.set_index("hashtag")
    common = [h for h in est.index if h in true.index]
    rows = []
    for tag in common:
        row = {"campaign": f"#{tag}", "shape": est.loc[tag, "shape"]}
        if "campaign_type" in true.columns:
            row["true shape"] = true.loc[tag, "campaign_type"]
        for t in tiers:
            row[t] = est.loc[tag, t]
            row[f"{t} (true)"] = true.loc[tag, t]
        row["mean |error|"] = float(np.mean([abs(est.loc[tag, t] - true.loc[tag, t]) for t in tiers]))
        rows.append(row)
    return pd.DataFrame(rows)


def truth_check(df: pd.DataFrame) -> pd.DataFrame:
    """A truth-check table (metric, value, target, passed, note) with a readable verdict column."""
    out = df.copy()
    if "passed" in out.columns:
        def verdict(v):
            if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
                return "reported"
            return "pass" if str(v).lower() in ("true", "1", "1.0") else "FAIL"
        out["passed"] = out["passed"].map(verdict)
    return out


def recovery_table(recovery: dict) -> pd.DataFrame:
    """Paper 2 on the simulated logs: per model and method, the estimated gamma beside the true one and the error of
    the category (p, q) against the simulator's truth."""
    true_gamma = recovery.get("true_gamma")
    rows = []
    for label, r in recovery.get("by_model_method", {}).items():
        rows.append({"model / method": label, "gamma": r.get("gamma"), "gamma (true)": true_gamma,
                     "gamma error": None if true_gamma is None else r.get("gamma") - true_gamma,
                     "categories": r.get("categories"), "mean (p, q) error": r.get("mean_error"),
                     "p mean |rel. error|": r.get("p_mean_abs_rel_error"),
                     "q mean |rel. error|": r.get("q_mean_abs_rel_error"),
                     "p Spearman": r.get("p_spearman"), "q Spearman": r.get("q_spearman")})
    return pd.DataFrame(rows)


def table2_vs_paper(table2: pd.DataFrame) -> pd.DataFrame:
    """Table 2 of this run (VS-VAE vs the no-information rate per modality) beside the paper's numbers."""
    out = table2.copy()
    out["VS-VAE (paper)"] = out["modality"].map(lambda m: PAPER_TABLE2.get(m, (np.nan, np.nan))[0])
    out["NIR (paper)"] = out["modality"].map(lambda m: PAPER_TABLE2.get(m, (np.nan, np.nan))[1])
    return out


def growth_notes(fit: dict) -> list[str]:
    """Fallback notes for the growth model: the Stan backend (pystan when no CmdStan) and a subsampled fit."""
    notes = []
    backend = fit.get("backend")
    if backend and backend != "cmdstanpy":
        notes.append(f"Fallback ran: Stan backend {backend} (no CmdStan installation found); same log_growth.stan.")
    method = fit.get("method")
    if method and method != "nuts":
        notes.append(f"Approximate posterior: {method} draws instead of NUTS (R-hat/ESS not defined).")
    scale = fit.get("scale")
    if scale and scale != "all videos":
        notes.append(f"Reduced scale: {scale}.")
    return notes


def vsvae_notes(manifest: dict) -> list[str]:
    """Reduced-scale notes for the VS-VAE: layer widths scaled down from Web Appendix B."""
    cfg = manifest.get("config", {})
    notes = []
    if cfg.get("width_scale", 1) != 1:
        notes.append(f"Reduced scale: VS-VAE layer widths x {cfg['width_scale']} of the paper's "
                     f"(Web Appendix B); {manifest.get('parameters', '?'):,} parameters."
                     if isinstance(manifest.get("parameters"), int) else
                     f"Reduced scale: VS-VAE layer widths x {cfg['width_scale']} of the paper's (Web Appendix B).")
    if manifest.get("device") and manifest["device"] != "cuda":
        notes.append(f"Trained on {manifest['device']}.")
    return notes


def corpus_note(n_videos: int, synthetic: bool, campaign_sizes: pd.Series | None = None) -> str:
    """What this run's corpus is, against the paper's 518,303 videos; with `campaign_sizes` (videos per sponsored
    hashtag) also the campaigns' sizes against the paper's 1,500-2,000 videos per challenge (Web Appendix B)."""
    source = "the embedded synthetic world" if synthetic else "the user's scrapes"
    note = f"{n_videos:,} videos from {source}"
    if n_videos < PAPER_VIDEOS:
        note += f" (reduced scale: the paper has {PAPER_VIDEOS:,}, {n_videos / PAPER_VIDEOS:.1%} of it)"
    if campaign_sizes is not None and len(campaign_sizes):
        lo, hi = int(campaign_sizes.min()), int(campaign_sizes.max())
        note += (f"; {len(campaign_sizes)} sponsored campaign(s) of {lo:,}" + (f"-{hi:,}" if hi != lo else "")
                 + " videos each (the paper's challenges: 1,500-2,000), which is what the per-campaign FEI curves of "
                 "Table 4 rest on")
    return note + "."


def fmt(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Numbers rounded for display: integers with thousands separators, floats to `digits` significant places."""
    def one(v):
        if isinstance(v, (bool, np.bool_)) or v is None:
            return "" if v is None else str(v)
        if isinstance(v, (int, np.integer)):
            return f"{int(v):,}"
        if isinstance(v, (float, np.floating)):
            if np.isnan(v):
                return ""
            if abs(v) >= 1000:
                return f"{v:,.0f}"
            return f"{v:,.{digits}g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
        return str(v)
    def column(col: pd.Series) -> pd.Series:
        if str(col.name).endswith("id"):             # identifiers stay as written (no thousands separators)
            return col.map(lambda v: "" if v is None else str(v))
        return col.map(one)
    return df.apply(column) if len(df) else df


def to_html(df: pd.DataFrame, digits: int = 3, index: bool = False, caption: str | None = None) -> str:
    body = fmt(df, digits).to_html(index=index, escape=True, border=0, classes="reach-table")
    if caption:
        body = f"<p class='reach-caption'><b>{html.escape(caption)}</b></p>" + body
    return body


def note_html(text: str, kind: str = "note") -> str:
    """A highlighted note (kind: note, fallback, missing) placed beside the number it qualifies."""
    colours = {"note": "#eef4fb", "fallback": "#fff4d6", "missing": "#fde2e1"}
    return (f"<div class='reach-{kind}' style='background:{colours.get(kind, '#eee')};padding:4px 8px;"
            f"margin:4px 0;border-left:4px solid #999'>{html.escape(text)}</div>")


def img_html(path: Path, alt: str, width: int = 760) -> str:
    """An <img> with the PNG embedded as a base64 data URI (the report stays one self-contained file)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f"<img alt=\"{html.escape(alt, quote=True)}\" style=\"max-width:100%;width:{int(width)}px\" "
            f"src=\"data:image/png;base64,{data}\">")
