"""Rule logs: the header line, the stderr filter, and the TensorFlow feature path quiet on a machine without a GPU."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from reach.logs import filtered_stderr, log_run_header, nvidia_gpu_present, run_header, tf_noise_patterns

NOISE = ("cuInit", "Unable to register", "oneDNN", "absl::InitializeLog", "cpu_feature_guard",
         "Could not find cuda drivers", "is deprecated")


def test_run_header_says_device_extractor_and_source():
    assert run_header("cpu", "musicnn MTT_musicnn", "substitute", threads=1) == \
        "ran on cpu, 1 thread: musicnn MTT_musicnn (offline substitute)"
    assert run_header("cuda:0 (NVIDIA H200)", "VGG-19 (vgg19.h5)", "paper", threads=4) == \
        "ran on cuda:0 (NVIDIA H200), 4 threads: VGG-19 (vgg19.h5) (paper model)"
    assert run_header("cpu") == "ran on cpu: no pretrained model"
    with pytest.raises(ValueError, match="offline"):
        run_header("cpu", "GloVe", "offline")
    with pytest.raises(ValueError, match="without an extractor"):
        run_header("cpu", None, "paper")


def test_log_run_header_is_the_first_line_of_the_log(tmp_path):
    from reach.logs import setup_logging

    log = setup_logging(tmp_path / "rule.log", "some_rule")
    log_run_header(log, "cpu", "EfficientNet-Lite0", "substitute", threads=2)
    log.info("later")
    for h in logging.getLogger().handlers:
        h.flush()
    lines = (tmp_path / "rule.log").read_text().splitlines()
    assert lines[0].endswith("some_rule: ran on cpu, 2 threads: EfficientNet-Lite0 (offline substitute)")
    assert lines[1].endswith("later")


def test_filtered_stderr_drops_only_matching_lines_from_c_and_python_writes(capfd):
    with filtered_stderr((r"noise \d",)):
        os.write(2, b"noise 1 from C\nreal error from C\n")
        print("noise 2 from Python", file=sys.stderr)
        print("real warning from Python", file=sys.stderr)
    err = capfd.readouterr().err
    assert err.splitlines() == ["real error from C", "real warning from Python"]


def test_filtered_stderr_writes_back_when_the_block_raises(capfd):
    with pytest.raises(RuntimeError):
        with filtered_stderr((r"noise",)):
            os.write(2, b"noise\nwhat went wrong\n")
            raise RuntimeError("boom")
    assert capfd.readouterr().err == "what went wrong\n"


CUINIT = ("E0000 00:00:1796130755.790223   16634 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
          "Failed call to cuInit: UNKNOWN ERROR (303)\n")
ONEDNN = ("I0000 00:00:1796130750.772158   16634 port.cc:153] oneDNN custom operations are on. You may see slightly "
          "different numerical results due to floating-point round-off errors\n")


@pytest.mark.parametrize("gpu_present, kept", [(False, ""), (True, CUINIT)])
def test_cuinit_failure_is_dropped_only_without_a_gpu(capfd, gpu_present, kept):
    with filtered_stderr(tf_noise_patterns(gpu_present)):
        os.write(2, (ONEDNN + CUINIT).encode())
    assert capfd.readouterr().err == kept


# The TensorFlow feature path as the audio_features / image_features rules run it: musicnn's graph (with a patch of
# audio through it) and the VGG-19 .h5 loader on a small Keras model with an `fc2` layer.
TF_PATH = textwrap.dedent("""
    import sys
    import numpy as np
    from reach.features.audio import load_sound_model
    from reach.features.image import load_vgg19_h5

    model = load_sound_model(None, threads=1, max_patches=1)
    scores = model.track_means([np.zeros(16000 * 3, np.float32)])
    assert scores.shape == (1, 50), scores.shape

    import tf_keras
    net = tf_keras.Sequential([tf_keras.Input((8, 8, 3)), tf_keras.layers.Flatten(),
                               tf_keras.layers.Dense(4, name="fc2"), tf_keras.layers.Dense(3, activation="softmax")])
    net.save_weights(sys.argv[1])
    vgg = load_vgg19_h5(sys.argv[1], architecture=lambda: net)
    emb, probs = vgg.run_batch(np.zeros((2, 8, 8, 3), np.uint8))
    print("OK", model.device, vgg.device, emb.shape, probs.shape)
""")


@pytest.mark.skipif(nvidia_gpu_present(), reason="the no-GPU lines are kept (not noise) on a machine with a GPU")
def test_tensorflow_feature_path_prints_no_start_up_noise_on_a_cpu_machine(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "CUDA_"))}
    out = subprocess.run([sys.executable, "-c", TF_PATH, str(tmp_path / "small.weights.h5")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK cpu cpu (2, 4) (2, 3)"), out.stdout
    noisy = [line for line in out.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, "\n".join(noisy)


def test_stderr_to_log_moves_tool_output_into_the_rule_log(tmp_path, capfd):
    from reach.logs import setup_logging, stderr_to_log

    log = setup_logging(tmp_path / "rule.log", "fit_rule")
    with stderr_to_log(log, "stan output"):
        os.write(2, b"Warning: The parameter a has no priors.\n")
        print("Sampling: 100%", file=sys.stderr)
    for h in logging.getLogger().handlers:
        h.flush()
    assert capfd.readouterr().err == ""
    text = (tmp_path / "rule.log").read_text()
    assert "stan output:\nWarning: The parameter a has no priors.\nSampling: 100%" in text


def test_stderr_to_log_shows_the_output_on_the_console_when_the_block_fails(tmp_path, capfd):
    from reach.logs import setup_logging, stderr_to_log

    log = setup_logging(tmp_path / "rule.log", "fit_rule")
    with pytest.raises(RuntimeError):
        with stderr_to_log(log, "stan output"):
            os.write(2, b"Error: chain 1 failed\n")
            raise RuntimeError("sampling failed")
    assert "Error: chain 1 failed" in capfd.readouterr().err
