"""Exponential moving average of a module's parameters (Polyak averaging), shared by the VS-VAE and Deep IV fits.

Updated after every optimiser step with decay min(decay, (1 + s) / (10 + s)) at step s (a warm-up: the first
weights fade fast), and swapped in for validation and for the kept best weights. It removes most of the SGD noise
from the held-out loss, so early stopping compares averaged weights instead of one noisy iterate.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class ParameterEMA:
    def __init__(self, module: nn.Module, decay: float):
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"the weight-average decay must be in [0, 1), got {decay}")
        self.module, self.decay, self.steps = module, float(decay), 0
        self.shadow = [p.detach().clone() for p in module.parameters()] if self.decay > 0 else []

    @torch.no_grad()
    def update(self) -> None:
        if not self.shadow:
            return
        self.steps += 1
        decay = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        for sh, p in zip(self.shadow, self.module.parameters()):
            sh.lerp_(p.detach(), 1.0 - decay)

    @contextlib.contextmanager
    def applied(self):
        """The averaged weights in the module for the duration of the block (the raw ones restored after)."""
        if not self.shadow:
            yield
            return
        params = list(self.module.parameters())
        backup = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, sh in zip(params, self.shadow):
                p.copy_(sh)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(params, backup):
                    p.copy_(b)

    def state(self) -> dict:
        """Plain tensors and ints (a checkpoint that torch.load(weights_only=True) reads back)."""
        return {"steps": self.steps, "shadow": [s.detach().cpu().clone() for s in self.shadow]}

    def load_state(self, state: dict) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise ValueError("the weight-average state does not match the module (decay or parameters differ)")
        self.steps = int(state["steps"])
        for sh, saved in zip(self.shadow, state["shadow"]):
            sh.copy_(saved.to(sh.device))
