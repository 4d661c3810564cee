"""Logging for rule scripts: everything to the rule's log file, warnings also to stderr; one header line per rule
saying what ran on what; TensorFlow imported without its C++ start-up noise."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

MODEL_SOURCES = {"paper": "paper model", "substitute": "offline substitute"}

# TensorFlow's C++ start-up lines that are not errors. They are printed by absl before TensorFlow reads
# TF_CPP_MIN_LOG_LEVEL, so the environment variable alone does not remove them.
TF_NOISE = (
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"oneDNN custom operations are on",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* in other operations, rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register factory for plugin",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
)
# Lines that only mean "there is no GPU here": dropped only when the machine has no NVIDIA device, so that a real
# GPU whose driver fails still says so.
TF_NO_GPU_NOISE = (
    r"Could not find cuda drivers on your machine, GPU will not be used",
    r"failed call to cuInit",
)
# Python warnings from the packaged musicnn graph (TF1 layers, deprecated but what its checkpoint was built with).
MUSICNN_DEPRECATIONS = r"`tf\.layers\.\w+` is deprecated"


def setup_logging(log_path: str | Path, name: str = "reach") -> logging.Logger:
    """Route the ``reach`` logger (and the script's) to ``log_path``; return the script's logger."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    file_handler.setFormatter(fmt)
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(logging.WARNING)
    stderr_handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [file_handler, stderr_handler]
    root.setLevel(logging.INFO)
    return logging.getLogger(name)


def run_header(device: str, extractor: str | None = None, model_source: str | None = None,
               threads: int | None = None) -> str:
    """The one line that opens a rule's log: ``ran on <device>[, <n> threads]: <extractor> (<source>)`` or
    ``...: no model``. `model_source` is ``paper`` or ``substitute`` (as the feature manifests write it)."""
    if extractor is None and model_source is not None:
        raise ValueError(f"model_source {model_source!r} given without an extractor")
    if extractor is not None and model_source not in MODEL_SOURCES:
        raise ValueError(f"model_source must be one of {sorted(MODEL_SOURCES)}, not {model_source!r}")
    where = f"ran on {device}" + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else "")
    what = f"{extractor} ({MODEL_SOURCES[model_source]})" if extractor else "no pretrained model"
    return f"{where}: {what}"


def log_run_header(logger: logging.Logger, device: str, extractor: str | None = None,
                   model_source: str | None = None, threads: int | None = None) -> str:
    """Log :func:`run_header` at INFO and return it."""
    line = run_header(device, extractor, model_source, threads)
    logger.info(line)
    return line


def nvidia_gpu_present() -> bool:
    """Whether this machine exposes an NVIDIA GPU (a /dev/nvidia<N> device node, as the driver and container
    runtimes create). Looked up without initialising CUDA."""
    return any(re.fullmatch(r"nvidia\d+", p.name) for p in Path("/dev").glob("nvidia*"))


@contextlib.contextmanager
def stderr_to_log(logger: logging.Logger, label: str) -> Iterator[None]:
    """Capture file descriptor 2 for the block (a third-party tool's chatter: compiler notes, sampler progress) and
    write it to `logger` at INFO, prefixed by `label`, instead of the console. Nothing is dropped: the text is in the
    rule's log, and when the block raises it is also written back to stderr beside the traceback."""
    sys.stderr.flush()
    saved, saved_py = os.dup(2), sys.stderr
    failed = False
    with tempfile.TemporaryFile(mode="w+b") as buf:
        os.dup2(buf.fileno(), 2)
        sys.stderr = open(os.dup(buf.fileno()), "w", encoding="utf-8", errors="replace", buffering=1)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.close()
            sys.stderr = saved_py
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            text = buf.read().decode("utf-8", "replace").rstrip()
            if text:
                logger.info("%s:\n%s", label, text)
                if failed:
                    sys.stderr.write(text + "\n")
                    sys.stderr.flush()


def tf_noise_patterns(gpu_present: bool) -> tuple[str, ...]:
    """The TensorFlow start-up lines to drop: the "no driver" lines too when there is no GPU."""
    return TF_NOISE if gpu_present else TF_NOISE + TF_NO_GPU_NOISE


@contextlib.contextmanager
def filtered_stderr(patterns: tuple[str, ...]) -> Iterator[None]:
    """Capture file descriptor 2 (C/C++ and Python writes alike) for the block, then write back every line that
    matches none of `patterns`. Lines are only ever dropped by an explicit pattern, never by level."""
    noise = re.compile("|".join(patterns)) if patterns else None
    sys.stderr.flush()
    saved, saved_py = os.dup(2), sys.stderr
    with tempfile.TemporaryFile(mode="w+b") as buf:
        os.dup2(buf.fileno(), 2)
        # Python's sys.stderr (which may not be fd 2, e.g. under pytest) into the same file, same offset
        sys.stderr = open(os.dup(buf.fileno()), "w", encoding="utf-8", errors="replace", buffering=1)
        try:
            yield
        finally:
            sys.stderr.close()
            sys.stderr = saved_py
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            kept = [line for line in buf.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if noise is None or not noise.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow():
    """``import tensorflow`` for the feature extractors, quietly and honestly: INFO logs of its C++ runtime off
    (TF_CPP_MIN_LOG_LEVEL=1 unless set; warnings and errors stay), the start-up lines that absl prints before that
    setting applies dropped, and the CUDA probe done once here so that its "no driver" lines are dropped too, but
    only on a machine with no NVIDIA device. No device is hidden: TensorFlow sees whatever GPU there is."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    warnings.filterwarnings("ignore", message=MUSICNN_DEPRECATIONS, category=UserWarning)
    with filtered_stderr(tf_noise_patterns(nvidia_gpu_present())):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # the CUDA probe (cuInit) happens once per process, here
    return tf
