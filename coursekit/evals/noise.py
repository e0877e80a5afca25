"""Is a difference between two settings more than the noise of the random seed? A t-test over random seeds.

A short training run's result moves with the random seed (initial weights, data order, dropout). To call two
settings different, run each with several random seeds and ask whether the gap between their means is large
against its standard error:

* **paired** (the same random seeds, so the same data order, for both settings): the differences per random seed
  ``d_i = b_i - a_i`` have standard error ``sd(d) / sqrt(n)``, with ``n - 1`` degrees of freedom;
* **unpaired** (Welch): ``sqrt(var(a)/n_a + var(b)/n_b)``, with the Welch-Satterthwaite degrees of freedom.

The gap is *called* a difference when ``|gap| / se`` exceeds Student's t quantile at the chosen level (95%
two-sided by default). With 3 random seeds that quantile is 4.30 (2 degrees of freedom): few seeds make a
difference hard to call, as they should. Fewer than ``MIN_SEEDS`` runs per setting call nothing, since two
runs give a spread too unreliable to judge by (comparing min-max ranges of 2 runs calls a false difference
one time in 3). A worked example::

    >>> c = compare_seeds([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], paired=True)
    >>> (c.called, round(c.gap, 2), c.verdict)
    (True, 1.0, 'higher')
    >>> compare_seeds([1.0, 1.1], [2.0, 2.1]).reason
    'not called: 2 random seeds per setting, fewer than 3'
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

MIN_SEEDS = 3


@dataclass(frozen=True)
class SeedComparison:
    """``b`` against ``a``: the gap of the means, its standard error, and whether it is called a difference."""

    gap: float        # mean(b) - mean(a)
    se: float         # standard error of the gap (nan when too few seeds)
    t: float          # gap / se (inf when se is 0 and the gap is not)
    critical: float   # Student's t quantile the |t| must exceed
    n: int            # random seeds per setting (the smaller count, unpaired)
    called: bool
    reason: str

    @property
    def verdict(self) -> str:
        """'higher' or 'lower' (b against a) when called, else '≈' (within the noise)."""
        if not self.called:
            return "≈"
        return "higher" if self.gap > 0 else "lower"


def _values(name: str, xs: Sequence[float]) -> list[float]:
    values = [float(x) for x in xs]
    if any(not math.isfinite(x) for x in values):
        raise ValueError(f"compare_seeds: {name} holds a NaN or inf ({values}); a diverged run has no mean to compare")
    return values


def _variance(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)  # the sample variance (n - 1)


def _paired_se(a: list[float], b: list[float]) -> tuple[float, float]:
    diffs = [y - x for x, y in zip(a, b)]
    return math.sqrt(_variance(diffs) / len(diffs)), len(diffs) - 1


def _welch_se(a: list[float], b: list[float]) -> tuple[float, float]:
    va, vb = _variance(a) / len(a), _variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return 0.0, min(len(a), len(b)) - 1
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
    return se, dof


def compare_seeds(a: Sequence[float], b: Sequence[float], *, paired: bool = False,
                  level: float = 0.95) -> SeedComparison:
    """Compare setting ``b`` with setting ``a``, one value per random seed each (``paired``: random seed i for both)."""
    a, b = _values("a", a), _values("b", b)
    if not 0 < level < 1:
        raise ValueError(f"compare_seeds: level={level} must lie strictly between 0 and 1, e.g. 0.95")
    if paired and len(a) != len(b):
        raise ValueError(f"compare_seeds: paired needs one value per random seed in both ({len(a)} vs {len(b)}); "
                         "pass paired=False for settings run with different random seeds")
    gap = sum(b) / max(len(b), 1) - sum(a) / max(len(a), 1)
    n = min(len(a), len(b))
    if n < MIN_SEEDS:
        return SeedComparison(gap, math.nan, math.nan, math.nan, n, False,
                              f"not called: {n} random seeds per setting, fewer than {MIN_SEEDS}")
    se, dof = _paired_se(a, b) if paired else _welch_se(a, b)
    critical = float(stats.t.ppf(0.5 + level / 2, dof))
    if se <= 1e-12 * max(abs(x) for x in a + b):  # float rounding (0.25 - 0.4643 at each random seed), not noise
        se = 0.0
    if se == 0:  # every random seed gave the same gap: no noise to compare it with
        t = 0.0 if gap == 0 else math.copysign(math.inf, gap)
    else:
        t = gap / se
    called = abs(t) > critical
    word = "a difference" if called else "not called"
    reason = f"{word}: |gap| = {abs(gap):.4g} is {abs(t):.1f} standard errors (needs > {critical:.2f}, {n} random seeds)"
    return SeedComparison(gap, se, t, critical, n, called, reason)
