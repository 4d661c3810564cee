"""Candidate generation (paper 2, Section 4.3): choose at most K videos to promote, maximising
R(U; C) + R(V \\ U; 0) (Eq. 3), by the greedy algorithm (Algorithm 1) and its acceleration (Section 4.3.3).

The objective is monotone submodular (Theorem 3), so greedy is a (1 - 1/e)-approximation. The accelerated
greedy here keeps greedy's choices exactly and prunes its work with the dual of Eq. 13:

* every video's h_v(theta) and budget response b_v(theta) are tabulated once per planning step on a theta grid
  (they do not depend on the set, Section 4.2.2);
* for a candidate w, min over the grid of Phi_U(theta) + h_w(theta) + theta b is an upper bound on
  R(U + w; C) (weak duality) and the best budget-feasible mix of grid policies is a lower bound;
* only candidates whose upper bound reaches the best lower bound are solved exactly, with the optimal
  multiplier bounded below by max(theta*(U_k), theta*(U_{k-1} + w)) (Lemma 2) -- the AGA of Section 4.3.3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from reach.promotion.po import PoResult, Pruned, _as_inputs, _solve_h_u, f_value, solve_po, solve_po_cvxpy


@dataclass
class CgpoResult:
    selected: list[int]                 # chosen video indices, in the order greedy picked them
    po: PoResult                        # the optimal promotion policy for the chosen set
    objective: float                    # R(U; C) + R(V \ U; 0), in adopters
    gains: list[float]                  # marginal gain of each pick
    exact_evaluations: int = 0          # PO problems solved exactly
    stats: dict = field(default_factory=dict)


def no_promotion_adopters(p, q, m: float, A0, L: int, decay=None) -> np.ndarray:
    """R({v}; 0) for every video: adopters after L periods of pure diffusion."""
    pp, q_eff, a0 = _as_inputs(p, q, np.asarray(A0, dtype=float) / m, L, decay)
    return m * f_value(np.zeros((pp.size, L)), pp, q_eff, a0)


def _tie_tol(objective: float, base: np.ndarray) -> float:
    """Marginal gains closer than this are ties (the exact solver is accurate to ~1e-10 relative)."""
    return 1e-8 * max(abs(objective) + float(np.abs(base).sum()), 1.0)


def _better(gain: float, v: int, best_gain: float, best: int, tol: float) -> bool:
    """Greedy's choice rule, shared by both algorithms: a larger gain, or a tie (within tol) and a smaller index."""
    return gain > best_gain + tol or (abs(gain - best_gain) <= tol and (best < 0 or v < best))


def _subset(arr, idx):
    return None if arr is None else np.asarray(arr)[idx]


def greedy(p, q, m: float, A0, L: int, budget: float, K: int, decay=None,
           solver: Callable = solve_po) -> CgpoResult:
    """Algorithm 1: at each of K iterations solve PO for U + v for every remaining v and keep the best
    (ties to the smallest index). ``solver`` is ``solve_po`` or ``solve_po_cvxpy`` (the paper's way)."""
    p, q, A0 = (np.asarray(a, dtype=float) for a in (p, q, A0))
    n = p.size
    base = no_promotion_adopters(p, q, m, A0, L, decay)
    chosen: list[int] = []
    gains: list[float] = []
    current = PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)
    evaluations = 0
    for _ in range(min(K, n)):
        best, best_gain, best_po = -1, -np.inf, None
        for v in range(n):
            if v in chosen:
                continue
            idx = chosen + [v]
            res = solver(p[idx], q[idx], m, A0[idx], L, budget, _subset(decay, idx))
            evaluations += 1
            gain = res.adopters - current.adopters - base[v]
            if _better(gain, v, best_gain, best, _tie_tol(current.adopters, base)):
                best, best_gain, best_po = v, gain, res
        chosen.append(best)
        gains.append(float(best_gain))
        current = best_po
    rest = np.setdiff1d(np.arange(n), chosen)
    return CgpoResult(chosen, current, float(current.adopters + base[rest].sum()), gains, evaluations)


def _tabulate(p, q_eff, a0, thetas):
    """h_v(theta) (normalised), b_v(theta) = sum_t x_vt, the policies' values f_v and the policies themselves
    (as shares y, with their non-adopters u) for every video at every grid theta; warm-started along the grid
    (y and its u: ``reference._tabulate_v2`` recomputed u, to the same bits)."""
    n, G = p.size, thetas.size
    L = q_eff.shape[1]
    h = np.empty((n, G))
    spend = np.empty((n, G))
    value = np.empty((n, G))
    shares = np.empty((n, G, L))
    nonadopters = np.empty((n, G, L + 1))
    y, u = np.ones((n, L)), None
    for g, theta in enumerate(thetas):
        y, u = _solve_h_u(float(theta), p, q_eff, a0, y, u0=u)
        x = y * u[:, :-1]
        value[:, g] = f_value(x, p, q_eff, a0)
        spend[:, g] = x.sum(axis=1)
        h[:, g] = value[:, g] - theta * spend[:, g]
        shares[:, g] = y
        nonadopters[:, g] = u
    return h, spend, value, shares, nonadopters


def accelerated_greedy(p, q, m: float, A0, L: int, budget: float, K: int, decay=None,
                       grid_size: int = 160) -> CgpoResult:
    """AGA: the same choices as ``greedy`` (up to solver tolerance on exact ties), with dual bounds from a
    per-step theta grid deciding which candidates need an exact PO solve (see the module docstring)."""
    p, q, A0 = (np.asarray(a, dtype=float) for a in (p, q, A0))
    n = p.size
    pp, q_eff, a0 = _as_inputs(p, q, A0 / m, L, decay)
    b = budget / m
    base = m * f_value(np.zeros((n, L)), pp, q_eff, a0)
    theta_max = float(np.max(pp * np.prod(1 + q_eff, axis=1))) * (1 + 1e-9) + 1e-15
    thetas = np.concatenate([[0.0], np.geomspace(theta_max * 1e-6, theta_max, grid_size - 1)])
    h, spend, value, shares, nonadopters = _tabulate(pp, q_eff, a0, thetas)
    h_m, value_m = m * h, m * value

    chosen: list[int] = []
    gains: list[float] = []
    in_set = np.zeros(n, dtype=bool)
    phi = np.zeros(thetas.size)          # Phi_U(theta) = sum_{u in U} h_u(theta), in adopters
    spend_u = np.zeros(thetas.size)      # B_U(theta)
    value_u = np.zeros(thetas.size)      # sum_{u in U} f_u(x_u(theta)), in adopters
    current = PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)
    theta_prev = np.zeros(n)             # theta*(U_{k-1} + v) from the last exact solve of v
    gain_prev = np.full(n, np.inf)       # an upper bound on v's gain from an earlier iteration (submodularity)
    evaluations = 0
    idle_theta, idle_all = None, np.zeros(n, dtype=bool)   # the idle flags of candidates at theta = idle_theta
    theta_mb = thetas[None, :] * m * b
    for _ in range(min(K, n)):
        cand = np.flatnonzero(~in_set)
        # upper bound: weak duality on the grid
        upper = np.min(phi[None, :] + h_m[cand] + theta_mb, axis=1)
        # lower bound: the best budget-feasible grid point, mixed with its neighbour to spend exactly
        tot_spend = spend_u[None, :] + spend[cand]
        tot_value = value_u[None, :] + value_m[cand]
        feasible = tot_spend <= b * (1 + 1e-12)
        first = np.where(feasible.any(axis=1), feasible.argmax(axis=1), thetas.size - 1)
        lower = tot_value[np.arange(cand.size), first]
        has_prev = first > 0
        j = np.maximum(first - 1, 0)
        s_hi, s_lo = tot_spend[np.arange(cand.size), j], tot_spend[np.arange(cand.size), first]
        w = np.where(has_prev & (s_hi > s_lo), np.clip((b - s_lo) / np.where(s_hi > s_lo, s_hi - s_lo, 1), 0, 1), 0.0)
        mixed = (1 - w) * lower + w * tot_value[np.arange(cand.size), j]  # concavity: f(mix) >= mix of f
        lower = np.maximum(lower, mixed)
        gain_upper = np.minimum(upper - current.adopters - base[cand], gain_prev[cand])  # lazy bound (Theorem 3)
        gain_lower = np.minimum(lower - current.adopters - base[cand], gain_upper)
        # A candidate that would spend nothing at theta*(U) leaves the optimum unchanged: its gain is exactly 0
        # (KKT of Eq. 13 hold for U + w with x_w = 0 and the same multiplier), so it needs no solve.
        # (Only used once a multiplier is positive; h_v at a given theta depends on v alone, so the flags of the
        # last theta solved are reused while theta* stays put -- after an idle pick.)
        if chosen and current.theta > 0:
            if idle_theta != current.theta:
                y_at, u_at = _solve_h_u(current.theta, pp[cand], q_eff[cand], a0[cand])
                idle_all[cand] = np.sum(y_at * u_at[:, :-1], axis=1) <= 0
                idle_theta = current.theta
            idle = idle_all[cand]
            gain_upper = np.where(idle, 0.0, gain_upper)
            gain_lower = np.where(idle, 0.0, gain_lower)
        else:
            idle = np.zeros(cand.size, dtype=bool)
        # exact solves for every candidate that could still be the best, best upper bound first
        order = np.lexsort((cand, -gain_upper))
        best, best_gain, best_po = -1, -np.inf, None
        tol = _tie_tol(current.adopters, base)
        threshold = gain_lower.max()
        for k in order:
            if gain_upper[k] < max(best_gain, threshold) - tol:
                break
            v = int(cand[k])
            if best >= 0 and gain_upper[k] <= best_gain + tol and v > best:
                continue  # can at most tie, and ties go to the smaller index
            if idle[k]:
                if _better(0.0, v, best_gain, best, tol):
                    best, best_gain = v, 0.0
                    best_po = PoResult(current.adopters + base[v], np.vstack([current.x, np.zeros((1, L))]),
                                       current.theta, current.budget_used)
                continue
            idx = chosen + [v]
            f = int(first[k])
            res = solve_po(p[idx], q[idx], m, A0[idx], L, budget, _subset(decay, idx),
                           theta_lo=max(current.theta, theta_prev[v], thetas[f - 1] if f > 0 else 0.0),
                           theta_hi=thetas[f], y0=shares[idx, f], u0=nonadopters[idx, f],
                           prune_below=current.adopters + base[v] + best_gain - tol if best >= 0 else None)
            evaluations += 1
            if isinstance(res, Pruned):  # a dual value proved v cannot beat the best so far
                gain_prev[v] = res.bound - current.adopters - base[v]
                continue
            theta_prev[v] = res.theta
            gain = res.adopters - current.adopters - base[v]
            gain_prev[v] = gain
            if _better(gain, v, best_gain, best, tol):
                best, best_gain, best_po = v, gain, res
        chosen.append(best)
        gains.append(float(best_gain))
        in_set[best] = True
        phi += h_m[best]
        spend_u += spend[best]
        value_u += value_m[best]
        current = best_po
    rest = np.flatnonzero(~in_set)
    return CgpoResult(chosen, current, float(current.adopters + base[rest].sum()), gains, evaluations,
                      {"grid_size": grid_size})


def single_period_optimum(p, q, m: float, A0, budget: float, K: int, decay=None) -> CgpoResult:
    """The exact CGPO optimum at L = 1 (the NoD policy): one period of P-BDM is linear in x, so PO is a
    fractional knapsack -- each impression on v adds p_v adopters, up to v's non-adopters -- and the best set
    fills the largest p first. Exact whenever the budget is spent within K videos (ties to the smaller index);
    otherwise this falls back to the accelerated greedy and ``stats['exact']`` is False."""
    p, q, A0 = (np.asarray(a, dtype=float) for a in (p, q, A0))
    pp, q_eff, a0 = _as_inputs(p, q, A0 / m, 1, decay)
    base = m * f_value(np.zeros((pp.size, 1)), pp, q_eff, a0)
    cap = 1 - a0
    order = np.lexsort((np.arange(pp.size), -pp))
    order = order[cap[order] > 0]
    left = budget / m
    x = np.zeros(pp.size)
    chosen: list[int] = []
    for v in order:
        if left <= 0 or len(chosen) == K:
            break
        x[v] = min(cap[v], left)
        left -= x[v]
        chosen.append(int(v))
    if not (left <= 0 or len(chosen) < K):  # K videos cannot absorb the budget: a cardinality-bound knapsack
        return _single_period_greedy(pp, q_eff, a0, m, budget / m, K, base)
    sel = np.array(chosen, dtype=int)
    xs = x[sel][:, None]
    value = float(m * f_value(xs, pp[sel], q_eff[sel], a0[sel]).sum()) if sel.size else 0.0
    theta = float(pp[sel[-1]]) if sel.size and left <= 0 else 0.0
    po = PoResult(value, xs, theta, float(m * xs.sum()))
    rest = np.setdiff1d(np.arange(pp.size), sel)
    gains = [float(m * pp[v] * x[v]) for v in sel]
    return CgpoResult(chosen, po, float(value + base[rest].sum()), gains, 0, {"exact": True})


def _knapsack_fill(p_sorted, cap_sorted, b):
    """Allocation of budget b to items already sorted by density: fill in order."""
    before = np.concatenate([[0.0], np.cumsum(cap_sorted)[:-1]])
    return np.clip(b - before, 0.0, cap_sorted)


def _single_period_greedy(pp, q_eff, a0, m, b, K, base) -> CgpoResult:
    """Algorithm 1 at L = 1 with every marginal gain in closed form: adding w keeps the allocation of the members
    denser than w, gives w what is left up to its capacity, and refills the less dense members with the rest."""
    n = pp.size
    cap = 1 - a0
    order = np.lexsort((np.arange(n), -pp))           # density order, ties to the smaller index
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    in_set = np.zeros(n, dtype=bool)
    chosen, gains = [], []
    value = 0.0
    for _ in range(min(K, n)):
        members = order[in_set[order]]                # U in density order
        c_u, p_u = cap[members], pp[members]
        ccap = np.concatenate([[0.0], np.cumsum(c_u)])
        cval = np.concatenate([[0.0], np.cumsum(c_u * p_u)])
        cand = np.flatnonzero(~in_set & (cap > 0))
        if cand.size == 0:
            break
        k = np.searchsorted(rank[members], rank[cand])  # members denser than w: positions < k
        dense_cap = ccap[k]
        a_w = np.minimum(cap[cand], np.maximum(b - dense_cap, 0.0))
        dense_val = np.where(b >= dense_cap, cval[k], 0.0)
        if members.size:  # when the denser members already exceed b, value is the old fill of the first part
            old_fill = _knapsack_fill(p_u, c_u, b)
            old_cum = np.concatenate([[0.0], np.cumsum(old_fill * p_u)])
            dense_val = np.where(b >= dense_cap, dense_val, old_cum[k])
        rest = np.maximum(b - dense_cap - a_w, 0.0)
        target = ccap[k] + rest                      # fill the less dense members up to this cumulative cap
        j = np.clip(np.searchsorted(ccap, target, side="right") - 1, 0, members.size)
        partial = np.where(j < members.size, (target - ccap[j]) * np.append(p_u, 0.0)[j], 0.0)
        tail_val = cval[j] - cval[k] + partial
        new_value = dense_val + pp[cand] * a_w + tail_val
        gain = m * (new_value - value)
        best_pos = int(np.lexsort((cand, -np.round(gain, 9)))[0])
        w = int(cand[best_pos])
        chosen.append(w)
        gains.append(float(gain[best_pos]))
        in_set[w] = True
        value = float(new_value[best_pos])
    sel = np.array(chosen, dtype=int)
    ordered = sel[np.argsort(rank[sel])]
    fill = _knapsack_fill(pp[ordered], cap[ordered], b)
    x = np.zeros((sel.size, 1))
    x[[chosen.index(v) for v in ordered], 0] = fill
    adopters = float(m * f_value(x, pp[sel], q_eff[sel], a0[sel]).sum()) if sel.size else 0.0
    rest_idx = np.setdiff1d(np.arange(n), sel)
    po = PoResult(adopters, x, float(pp[ordered][fill > 0].min()) if (fill > 0).any() else 0.0, float(m * x.sum()))
    return CgpoResult(chosen, po, float(adopters + base[rest_idx].sum()), gains, 0, {"exact": False})


def exhaustive(p, q, m: float, A0, L: int, budget: float, K: int, decay=None) -> tuple[list[int], float]:
    """The optimal candidate set by trying every subset of size <= K (tiny instances only)."""
    from itertools import combinations

    p, q, A0 = (np.asarray(a, dtype=float) for a in (p, q, A0))
    n = p.size
    base = no_promotion_adopters(p, q, m, A0, L, decay)
    best_set, best_val = [], base.sum()
    for k in range(1, min(K, n) + 1):
        for combo in combinations(range(n), k):
            idx = list(combo)
            res = solve_po(p[idx], q[idx], m, A0[idx], L, budget, _subset(decay, idx))
            val = res.adopters + base.sum() - base[idx].sum()
            if val > best_val:
                best_set, best_val = idx, val
    return best_set, float(best_val)


__all__ = ["CgpoResult", "greedy", "accelerated_greedy", "exhaustive", "no_promotion_adopters", "solve_po_cvxpy"]
