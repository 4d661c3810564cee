"""reach.causal.truth: the truth check's curve comparisons on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reach.causal.truth import band_coverage, curve_error, data_support, true_fei_on_grid


def test_true_fei_is_interpolated_per_video_in_the_requested_order():
    truth = pd.DataFrame({"video_id": [1, 1, 2, 2], "log_followers": [0.0, 2.0, 0.0, 2.0],
                          "fei": [0.0, 1.0, 1.0, 1.0]})
    out = true_fei_on_grid(truth, np.array(["2", "1"]), np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(out, [[1.0, 1.0, 1.0], [0.0, 0.5, 1.0]])


def test_support_error_and_coverage_by_hand():
    grid = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    support, lo, hi = data_support(np.linspace(1.0, 3.0, 201), grid)
    assert np.allclose([lo, hi], [1.02, 2.98]) and support.tolist() == [False, False, True, False, False]
    support = np.array([False, True, True, True, False])
    truth = np.zeros(5)
    assert abs(curve_error(np.array([9.0, 0.1, -0.2, 0.3, 9.0]), truth, support) - 0.2) < 1e-12
    assert band_coverage(np.array([1, -1, 0.1, -1, 1.0]), np.array([2, 1, 1, 0, 2.0]), truth, support) == 2 / 3
