"""Rule text_features: caption, sticker text and voice-over transcript as token sequences with word vectors
(Word2Vec from a local file, else the packaged GloVe 50-d). Voice-overs: the tracks the audio rule found speech in
are transcribed with pocketsphinx (the paper's cloud API is out of reach offline)."""

import json
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.features.speech import Transcriber
from reach.features.store import load_npz, offsets_from_lengths, save_npz, shard_rows
from reach.features.text import embed, load_word_vectors, tokenize
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "text_features")
p = smk.params
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "desc", "sticker_text"])
sub = videos.iloc[shard_rows(videos["video_id"], int(smk.wildcards.shard), int(p.n_shards))]
audio = load_npz(smk.input.audio)
sound = load_npz(smk.input.audio_features)
ids = sub["video_id"].to_numpy().astype(str)
if not (np.array_equal(audio["video_id"], ids) and np.array_equal(sound["video_id"], ids)):
    raise ValueError("audio shard files do not list this shard's videos in videos.parquet order")
wv = load_word_vectors(p.word2vec)
log_run_header(log, "cpu", f"{wv.name} + pocketsphinx (bundled English model)", wv.source, threads=smk.threads)
log.info("word vectors: %s (%s, %d-d, %d words)", wv.name, wv.source, wv.dim, len(wv.index))
rate = int(audio["meta_rate"][0])
off = audio["wave__offsets"]
transcriber = Transcriber(rate)
sources = {"caption": list(sub["desc"]), "sticker": [s.replace(" | ", " ") for s in sub["sticker_text"]]}
voice_rows, transcripts = [], []
start = time.perf_counter()
for i, vid in enumerate(tqdm(ids, desc="voice-overs", mininterval=5)):
    a_status = str(sound["status"][i])
    if off[i + 1] == off[i]:
        voice_rows.append({"video_id": vid, "status": f"no_audio ({a_status})", "speech_detected": False,
                           "speech_score": np.nan, "start_s": np.nan, "end_s": np.nan, "transcript": "",
                           "confidence": np.nan})
        transcripts.append("")
        continue
    if not bool(sound["speech_detected"][i]):
        voice_rows.append({"video_id": vid, "status": "no_speech", "speech_detected": False,
                           "speech_score": float(sound["speech_score"][i]), "start_s": np.nan, "end_s": np.nan,
                           "transcript": "", "confidence": np.nan})
        transcripts.append("")
        continue
    s0, s1 = float(sound["speech_start_s"][i]), float(sound["speech_end_s"][i])
    # the segment's samples, never past this video's own track in the concatenated waves
    seg = audio["wave"][off[i] + int(s0 * rate):min(off[i] + int(s1 * rate), off[i + 1])].astype(np.float32) / 32767.0
    text, conf = transcriber.transcribe(seg)
    voice_rows.append({"video_id": vid, "status": "transcribed" if text else "no_words", "speech_detected": True,
                       "speech_score": float(sound["speech_score"][i]), "start_s": s0, "end_s": s1,
                       "transcript": text, "confidence": conf})
    transcripts.append(text)
seconds = time.perf_counter() - start
sources["voice"] = transcripts
arrays = {"video_id": ids}
counts = {}
for name, texts in sources.items():
    toks, vecs, n_oov = [], [], []
    for t in texts:
        kept, v, oov = embed(tokenize(t, bool(p.split_hashtags)), wv)
        toks.append(kept)
        vecs.append(v)
        n_oov.append(oov)
    arrays[f"{name}_vectors"] = np.concatenate(vecs) if vecs else np.zeros((0, wv.dim), np.float32)
    arrays[f"{name}_vectors__offsets"] = offsets_from_lengths([len(v) for v in vecs])
    arrays[f"{name}_tokens"] = np.array([w for k in toks for w in k], dtype=str) if any(toks) else np.zeros(0, "<U1")
    arrays[f"{name}_tokens__offsets"] = offsets_from_lengths([len(k) for k in toks])
    arrays[f"{name}_mean"] = np.array([v.mean(0) if len(v) else np.full(wv.dim, np.nan) for v in vecs], np.float32) \
        if vecs else np.zeros((0, wv.dim), np.float32)
    arrays[f"{name}_n_oov"] = np.array(n_oov, np.int64)
    counts[name] = {"tokens": int(sum(len(k) for k in toks)), "out_of_vocabulary": int(sum(n_oov)),
                    "videos_without_tokens": int(sum(len(k) == 0 for k in toks))}
voice = pd.DataFrame(voice_rows)
arrays.update(voice_confidence=voice["confidence"].to_numpy(float), voice_detected=voice["speech_detected"].to_numpy(bool),
              voice_status=voice["status"].to_numpy().astype(str))
save_npz(smk.output.features, **arrays)
voice.to_parquet(smk.output.status, index=False)
log.info("voice: %s in %.1f s; tokens %s", voice["status"].value_counts().to_dict(), seconds, counts)
manifest = {
    "modality": "text",
    "extractor": {"name": wv.name, "source": wv.source, "dim": wv.dim},
    "paper_extractor": "Word2Vec GoogleNews (300-d)",
    "voice_over": {"detector": "the audio rule's speech segment (see audio manifest)",
                   "transcriber": "pocketsphinx 5 bundled US-English model",
                   "pocketsphinx_options": transcriber.options,
                   "paper": "Google Cloud speech-to-text (not reachable offline)",
                   "statuses": voice["status"].value_counts().to_dict()},
    "dims": {f"{k}_vectors": wv.dim for k in sources}, "tokens": counts, "seconds_transcribing": seconds,
}
with open(smk.output.manifest, "w") as f:
    json.dump(manifest, f, indent=2)
