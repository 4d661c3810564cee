"""reach.ema.ParameterEMA against the recursion written out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reach.ema import ParameterEMA


def test_average_follows_the_warm_up_recursion_and_is_swapped_in_and_out():
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0]]))
    ema = ParameterEMA(layer, decay=0.9)
    expected = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    for step in range(1, 8):
        with torch.no_grad():
            layer.weight.add_(torch.tensor([[0.5, 2.0]]) * step)
        ema.update()
        d = min(0.9, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * layer.weight.detach().double()
    raw = layer.weight.detach().clone()
    with ema.applied():
        torch.testing.assert_close(layer.weight.detach().double(), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(layer.weight.detach(), raw)
    # the state round trip restores the average and the step count (resuming continues the same recursion)
    other = ParameterEMA(layer, decay=0.9)
    other.load_state(ema.state())
    assert other.steps == 7
    with other.applied():
        torch.testing.assert_close(layer.weight.detach().double(), expected, rtol=1e-6, atol=1e-6)


def test_zero_decay_is_off_and_bad_decay_is_refused():
    layer = nn.Linear(2, 1)
    ema = ParameterEMA(layer, decay=0.0)
    with torch.no_grad():
        layer.weight.add_(1.0)
    ema.update()
    raw = layer.weight.detach().clone()
    with ema.applied():
        assert torch.equal(layer.weight.detach(), raw)
    with pytest.raises(ValueError, match="decay"):
        ParameterEMA(layer, decay=1.0)
