"""The VS-VAE (Section 3.1, Web Appendices B and F): modality encoders (Eq. 14), a joint encoder to (mu, log sigma)
(Eq. 15), mirrored decoders and the loss of Eq. 16 (sum of the modality reconstructions + KL).

Encoders (Web Appendix B widths, scaled to the actual input widths by `layer_widths`):
  text     one Bi-LSTM per source (caption, sticker, voice-over) over the word vectors -> concatenated final states
           -> dense (64)
  image    LSTM over the per-frame vectors (VGG-19 fc2 slot; hidden width = the frame width, 4,096 in the paper)
           -> its last hidden state concatenated with the object and sentiment vectors -> dense 4096-1024-512
  audio    dense (64);  editing  dense (16)
  joint    concatenation (656 in the paper) -> dense -> (mu, log sigma) of r (256)
Departure, switchable (`embedding_activation`): "linear" drops the ReLU of the audio and editing encoders' single
dense layer, so the joint layer sees an unrectified linear projection of those features. With ReLU, mu is a
rectified function of them and r loses part of their linear information on the content (the VS-VAE issue's probe:
content_2, carried by the editing pacing columns, 0.797 -> 0.836 from r; see the README).
Decoders mirror them: r -> dense back to the joint width, split per modality;
  text     dense -> per source an input repeated over positions -> Bi-LSTM -> time-distributed dense -> softmax over
           the vocabulary (categorical cross-entropy)
  image    dense 512-1024-4096 -> (1) an LSTM whose outputs (through a time-distributed linear layer) are the frame
           vectors and (2) a linear head for the object and sentiment means (MSE = Gaussian likelihood)
  audio, editing   one dense layer back to the features (MSE)
All fully connected hidden layers use ReLU (Web Appendix B); output layers are linear (or softmax for words).

Loss (Eq. 16), per video and averaged over the batch:
  L = sum_sources CE(words) + 0.5 * SSE(frames) + 0.5 * SSE(image vector) + 0.5 * SSE(audio) + 0.5 * SSE(editing)
      + KL(q(r | x) || N(0, I)),
with every real-valued feature standardised (so 0.5 * squared error is the Gaussian negative log likelihood with
unit variance, up to a constant), sums running over observed entries only (padding and NaN masked), and
KL = 0.5 * sum_k (mu_k^2 + sigma_k^2 - 1 - 2 log sigma_k).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from reach.represent.data import TEXT_SOURCES

# Web Appendix B: the paper's input widths and layer widths.
PAPER_INPUT = {"word": 300, "frame": 4096, "image_vector": 4096 + 1000 + 2089, "audio": 543, "editing": 157}
PAPER_WIDTH = {"text_lstm": 64, "text_dense": 64, "image_lstm": 4096, "image_dense": (4096, 1024, 512),
               "audio_dense": 64, "editing_dense": 16}
LOG_SIGMA_CLIP = (-10.0, 5.0)


@dataclass
class Widths:
    text_lstm: int
    text_dense: int
    image_lstm: int
    image_dense: tuple[int, ...]
    audio_dense: int
    editing_dense: int
    latent: int

    @property
    def joint(self) -> int:
        return self.text_dense + self.image_dense[-1] + self.audio_dense + self.editing_dense

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_dense"] = list(self.image_dense)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Widths":
        d = dict(d)
        d["image_dense"] = tuple(int(x) for x in d["image_dense"])
        return cls(**{k: int(v) if k != "image_dense" else v for k, v in d.items()})


def layer_widths(dims: dict, latent: int = 256, width_scale: float = 1.0, min_width: int = 16,
                 editing_width: int | None = None, audio_width: int | None = None) -> Widths:
    """Web Appendix B's widths scaled by (actual input width / the paper's input width) of each modality, times
    `width_scale` (1 = the paper's proportions), floored at `min_width`. The image LSTM's hidden width is the
    frame width itself at width_scale 1 (4,096 for VGG-19 in the paper). `editing_width` / `audio_width`, when given,
    replace the editing / audio encoder's width (and that modality's slice of the joint decoder)."""

    def w(paper: int, ratio: float) -> int:
        return max(int(min_width), int(round(paper * ratio * width_scale)))

    text = dims["word_dim"] / PAPER_INPUT["word"]
    frame = dims["frame_dim"] / PAPER_INPUT["frame"]
    vec = (dims["frame_dim"] + dims["image_vector_dim"]) / PAPER_INPUT["image_vector"]
    return Widths(
        text_lstm=w(PAPER_WIDTH["text_lstm"], text), text_dense=w(PAPER_WIDTH["text_dense"], text),
        image_lstm=w(PAPER_WIDTH["image_lstm"], frame),
        image_dense=tuple(w(x, vec) for x in PAPER_WIDTH["image_dense"]),
        audio_dense=int(audio_width) if audio_width else w(PAPER_WIDTH["audio_dense"],
                                                          dims["audio_dim"] / PAPER_INPUT["audio"]),
        editing_dense=int(editing_width) if editing_width else w(PAPER_WIDTH["editing_dense"],
                                                                dims["editing_dim"] / PAPER_INPUT["editing"]),
        latent=int(latent))


def _mlp(sizes: list[int], last_relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_relu or k < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _last_states(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Final hidden state(s) of an LSTM over padded sequences (forward and backward for a Bi-LSTM), concatenated;
    zero for empty sequences."""
    n = x.shape[0]
    present = lengths > 0
    clamped = lengths.clamp(min=1).cpu()
    packed = pack_padded_sequence(x, clamped, batch_first=True, enforce_sorted=False)
    _, (h, _) = lstm(packed)
    h = h.transpose(0, 1).reshape(n, -1)  # (n, directions * hidden)
    return h * present.to(h.dtype).unsqueeze(1)


NOISE_MODALITIES = ("frames", "image_vector", "audio", "editing")
LOG_NOISE_CLIP = (-3.0, 3.0)  # learned per-column noise sd on the standardised scale: 0.05 .. 20


EMBEDDING_ACTIVATIONS = ("relu", "linear")


class VSVAE(nn.Module):
    def __init__(self, dims: dict, widths: Widths, learn_noise: bool = False, embedding_activation: str = "relu"):
        super().__init__()
        if embedding_activation not in EMBEDDING_ACTIVATIONS:
            raise ValueError(f"embedding_activation must be one of {EMBEDDING_ACTIVATIONS}, got {embedding_activation!r}")
        self.dims = dict(dims)
        self.widths = widths
        # Gaussian decoders with a learned sd per feature column (log scale, starting at the unit variance of
        # Eq. 16); None keeps Eq. 16's fixed unit variance.
        columns = {"frames": dims["frame_dim"], "image_vector": dims["image_vector_dim"], "audio": dims["audio_dim"],
                   "editing": dims["editing_dim"]}
        self.log_noise = nn.ParameterDict({m: nn.Parameter(torch.zeros(columns[m])) for m in NOISE_MODALITIES}
                                          ) if learn_noise else None
        W, d = widths, dims
        L, T = d["max_words"], d["max_frames"]
        self.max_words, self.max_frames = L, T
        # encoders (Eq. 14)
        self.text_lstm = nn.ModuleDict({s: nn.LSTM(d["word_dim"], W.text_lstm, batch_first=True, bidirectional=True)
                                        for s in TEXT_SOURCES})
        self.text_enc = _mlp([3 * 2 * W.text_lstm, W.text_dense])
        self.image_lstm = nn.LSTM(d["frame_dim"], W.image_lstm, batch_first=True)
        self.image_enc = _mlp([W.image_lstm + d["image_vector_dim"], *W.image_dense])
        rectify = embedding_activation == "relu"  # Web Appendix B; "linear": see the module docstring
        self.audio_enc = _mlp([d["audio_dim"], W.audio_dense], last_relu=rectify)
        self.editing_enc = _mlp([d["editing_dim"], W.editing_dense], last_relu=rectify)
        # joint encoder (Eq. 15): one fully connected layer to (mu, log sigma)
        self.joint_enc = nn.Linear(W.joint, 2 * W.latent)
        # decoders (mirrored)
        self.joint_dec = _mlp([W.latent, W.joint])
        self.text_dec = _mlp([W.text_dense, 3 * 2 * W.text_lstm])
        self.text_dec_lstm = nn.ModuleDict({s: nn.LSTM(2 * W.text_lstm, W.text_lstm, batch_first=True,
                                                       bidirectional=True) for s in TEXT_SOURCES})
        self.text_out = nn.ModuleDict({s: nn.Linear(2 * W.text_lstm, d["vocab_size"]) for s in TEXT_SOURCES})
        rev = list(reversed(W.image_dense))
        self.image_dec = _mlp(rev + [W.image_lstm])
        self.image_dec_lstm = nn.LSTM(W.image_lstm, W.image_lstm, batch_first=True)
        self.frame_out = nn.Linear(W.image_lstm, d["frame_dim"])
        self.image_vector_out = nn.Linear(W.image_lstm, d["image_vector_dim"])
        self.audio_dec = nn.Linear(W.audio_dense, d["audio_dim"])
        self.editing_dec = nn.Linear(W.editing_dense, d["editing_dim"])
        # position codes let the decoder LSTMs tell positions apart from a repeated input
        self.register_buffer("text_positions", _positions(L, 2 * W.text_lstm), persistent=False)
        self.register_buffer("frame_positions", _positions(T, W.image_lstm), persistent=False)

    # -- encoder -------------------------------------------------------------------------------------------------
    def encode(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma) of q(r | x) (Eqs. 13-15)."""
        h_text = torch.cat([_last_states(self.text_lstm[s], b[f"{s}_vectors"], b[f"{s}_lengths"])
                            for s in TEXT_SOURCES], dim=1)
        h_text = self.text_enc(h_text)
        h_frames = _last_states(self.image_lstm, b["frames"], b["n_frames"])
        h_image = self.image_enc(torch.cat([h_frames, b["image_vector"]], dim=1))
        h_audio = self.audio_enc(b["audio"])
        h_edit = self.editing_enc(b["editing"])
        out = self.joint_enc(torch.cat([h_text, h_image, h_audio, h_edit], dim=1))
        mu, log_sigma = out.chunk(2, dim=1)
        return mu, log_sigma.clamp(*LOG_SIGMA_CLIP)

    # -- decoder -------------------------------------------------------------------------------------------------
    def decode(self, r: torch.Tensor) -> dict[str, torch.Tensor]:
        W = self.widths
        h = self.joint_dec(r)
        h_text, h_image, h_audio, h_edit = torch.split(h, [W.text_dense, W.image_dense[-1], W.audio_dense,
                                                           W.editing_dense], dim=1)
        out = {}
        seeds = self.text_dec(h_text).chunk(3, dim=1)
        for s, seed in zip(TEXT_SOURCES, seeds):
            x = seed.unsqueeze(1) + self.text_positions.unsqueeze(0)
            y, _ = self.text_dec_lstm[s](x)
            out[f"{s}_logits"] = self.text_out[s](y)              # (n, L, V)
        g = self.image_dec(h_image)
        x = g.unsqueeze(1) + self.frame_positions.unsqueeze(0)
        y, _ = self.image_dec_lstm(x)
        out["frames"] = self.frame_out(y)                           # (n, T, frame_dim)
        out["image_vector"] = self.image_vector_out(g)
        out["audio"] = self.audio_dec(h_audio)
        out["editing"] = self.editing_dec(h_edit)
        return out

    def forward(self, b: dict[str, torch.Tensor], sample: bool = True,
                generator: torch.Generator | None = None) -> tuple[dict, torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.encode(b)
        if sample:
            # drawn on the CPU generator whatever the device, so a seed gives the same draws everywhere
            eps = torch.randn(mu.shape, generator=generator, dtype=torch.float32).to(mu.device, mu.dtype)
            r = mu + torch.exp(log_sigma) * eps
        else:
            r = mu
        return self.decode(r), mu, log_sigma


def _positions(n: int, width: int) -> torch.Tensor:
    """Sinusoidal position codes (n, width)."""
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    k = torch.arange(width, dtype=torch.float32).unsqueeze(0)
    angle = pos / torch.pow(10000.0, (2 * (k // 2)) / max(width, 1))
    return torch.where(k % 2 == 0, torch.sin(angle), torch.cos(angle))


def _gaussian_nll(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                  log_noise: torch.Tensor | None) -> torch.Tensor:
    """Sum over observed entries of the Gaussian negative log likelihood (constant dropped): 0.5 * error^2 with
    unit variance (Eq. 16), or 0.5 * error^2 / s^2 + log s with a learned sd s per column (last axis)."""
    se = (pred.float() - target) ** 2
    if log_noise is None:
        return 0.5 * (se * mask).sum()
    ln = log_noise.float().clamp(*LOG_NOISE_CLIP)
    return ((0.5 * se * torch.exp(-2 * ln) + ln) * mask).sum()


def loss_terms(out: dict[str, torch.Tensor], b: dict[str, torch.Tensor], mu: torch.Tensor,
               log_sigma: torch.Tensor, log_noise: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Per-video Eq. 16 terms averaged over the batch (float32), plus their sum under "loss". `log_noise`
    (VSVAE.log_noise when learned): log sd per feature column of frames, image vector, audio and editing."""
    noise = {} if log_noise is None else log_noise
    n = mu.shape[0]
    terms: dict[str, torch.Tensor] = {}
    text = torch.zeros((), device=mu.device)
    for s in TEXT_SOURCES:
        logits = out[f"{s}_logits"].float()
        ids = b[f"{s}_ids"]
        L = logits.shape[1]
        mask = torch.arange(L, device=ids.device).unsqueeze(0) < b[f"{s}_lengths"].unsqueeze(1)
        ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), reduction="none")
        text = text + (ce.reshape(n, L) * mask).sum() / n
    terms["text"] = text
    fmask = (torch.arange(out["frames"].shape[1], device=mu.device).unsqueeze(0)
             < b["n_frames"].unsqueeze(1)).unsqueeze(2)
    fmask = fmask.expand(-1, -1, out["frames"].shape[2]).to(torch.float32)
    frame_nll = _gaussian_nll(out["frames"], b["frames"], fmask, noise.get("frames"))
    vec_nll = _gaussian_nll(out["image_vector"], b["image_vector"], b["image_vector_mask"], noise.get("image_vector"))
    terms["image"] = (frame_nll + vec_nll) / n
    terms["audio"] = _gaussian_nll(out["audio"], b["audio"], b["audio_mask"], noise.get("audio")) / n
    terms["editing"] = _gaussian_nll(out["editing"], b["editing"], b["editing_mask"], noise.get("editing")) / n
    mu, log_sigma = mu.float(), log_sigma.float()
    terms["kl"] = 0.5 * (mu ** 2 + torch.exp(2 * log_sigma) - 1 - 2 * log_sigma).sum() / n
    terms["loss"] = terms["text"] + terms["image"] + terms["audio"] + terms["editing"] + terms["kl"]  # Eq. 16
    return terms


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def gaussian_kl(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over dimensions, per row (closed form)."""
    return 0.5 * (mu ** 2 + torch.exp(2 * log_sigma) - 1 - 2 * log_sigma).sum(1)


