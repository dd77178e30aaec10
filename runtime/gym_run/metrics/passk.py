"""Per-task counts in, pass@k out: the unbiased estimator of Chen et al. (2021, "Evaluating Large
Language Models Trained on Code"), the one NeMo Gym and most evaluation harnesses use.

With n rollouts of a task of which c passed, the chance that k of them drawn without replacement
include at least one pass is 1 - C(n-c, k) / C(n, k). Averaged over tasks it estimates pass@k
without the bias of "did any of the first k pass".
"""

from __future__ import annotations

import math


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k); exact integer binomials, one rounding at the end."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def ks_for(n: int) -> list[int]:
    """The k worth reporting for n repeats: powers of two below n, and n itself (1, 2, 4, ..., n)."""
    out = []
    k = 1
    while k < n:
        out.append(k)
        k *= 2
    if n >= 1:
        out.append(n)
    return out
