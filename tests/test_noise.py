"""compare_seeds: the same t statistic as scipy's t-tests, a call exactly when their p-value is below 5%."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from coursekit.evals import MIN_SEEDS, compare_seeds

runs = st.lists(st.floats(0.5, 5.0, allow_nan=False), min_size=MIN_SEEDS, max_size=6)


@settings(max_examples=200, deadline=None)
@given(a=runs, b=runs)
def test_welch_equals_scipy_ttest_ind(a, b):
    ref = stats.ttest_ind(b, a, equal_var=False)
    ours = compare_seeds(a, b, paired=False)
    if not math.isfinite(ref.statistic) or abs(ref.pvalue - 0.05) < 1e-9:
        return  # no spread at all (scipy gives nan), or a p-value on the boundary itself
    if ours.se == 0:  # a spread below float rounding: scipy's t is then rounding noise over rounding noise
        assert abs(ref.statistic) > 1e6 or ours.gap == 0, (ours, ref)
        return
    assert ours.t == pytest.approx(ref.statistic, rel=1e-9, abs=1e-9), (ours, ref)
    assert ours.called == (ref.pvalue < 0.05), (ours, ref)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(MIN_SEEDS, 6))
def test_paired_equals_scipy_ttest_rel(data, n):
    a = data.draw(st.lists(st.floats(0.5, 5.0), min_size=n, max_size=n))
    b = data.draw(st.lists(st.floats(0.5, 5.0), min_size=n, max_size=n))
    ref = stats.ttest_rel(b, a)
    ours = compare_seeds(a, b, paired=True)
    if not math.isfinite(ref.statistic) or abs(ref.pvalue - 0.05) < 1e-9:
        return
    if ours.se == 0:  # a spread below float rounding: scipy's t is then rounding noise over rounding noise
        assert abs(ref.statistic) > 1e6 or ours.gap == 0, (ours, ref)
        return
    assert ours.t == pytest.approx(ref.statistic, rel=1e-9, abs=1e-9), (ours, ref)
    assert ours.called == (ref.pvalue < 0.05), (ours, ref)
    assert ours.gap == pytest.approx(sum(b) / n - sum(a) / n)


def test_known_values():
    # three random seeds, gap 1.0, per-seed differences all 1.0 except noise of ±0.1
    c = compare_seeds([1.0, 1.1, 0.9], [2.1, 2.0, 1.9], paired=True)
    assert c.n == 3 and c.critical == pytest.approx(4.3027, abs=1e-4)  # t(0.975, 2 degrees of freedom)
    assert c.se == pytest.approx(math.sqrt(((0.1) ** 2 + 0.1 ** 2 + 0) / 2 / 3)), c
    assert c.called and c.verdict == "higher" and "standard errors" in c.reason
    assert compare_seeds([2.1, 2.0, 1.9], [1.0, 1.1, 0.9]).verdict == "lower"


def test_overlapping_ranges_are_not_called_and_separated_ones_can_be_noise():
    # min-max ranges that do not overlap, yet only 1.4 standard errors apart: the old rule called it, this does not
    a, b = [1.0, 1.5, 2.0], [2.05, 2.6, 3.1]
    assert max(a) < min(b)
    c = compare_seeds(a, b)
    assert not c.called and c.verdict == "≈", c
    assert compare_seeds(a, [x + 10 for x in a]).called


def test_few_random_seeds_call_nothing():
    c = compare_seeds([1.0, 1.01], [5.0, 5.01], paired=True)
    assert not c.called and math.isnan(c.se), c
    assert c.reason == "not called: 2 random seeds per setting, fewer than 3"
    assert c.gap == pytest.approx(4.0)


def test_no_spread():
    same = compare_seeds([1.0] * 3, [1.0] * 3, paired=True)
    assert not same.called and same.t == 0.0, same
    shifted = compare_seeds([1.0] * 3, [1.5] * 3, paired=True)  # every random seed agrees on the gap exactly
    assert shifted.called and shifted.t == math.inf and shifted.verdict == "higher", shifted
    assert compare_seeds([1.0] * 3, [0.5] * 3).t == -math.inf
    # the same gap at every random seed, up to float rounding (token accuracies 7/28 against 13/28): still no spread
    a, b = [13 / 28, (13 / 28) * 1.0000000000000002, 13 / 28], [7 / 28] * 3
    assert compare_seeds(a, b, paired=True).t == -math.inf, compare_seeds(a, b, paired=True)


def test_welch_uses_the_smaller_count_and_unequal_sizes():
    c = compare_seeds([1.0, 1.2, 0.8, 1.1], [3.0, 3.2, 2.9])
    assert c.n == 3 and c.called, c
    ref = stats.ttest_ind([3.0, 3.2, 2.9], [1.0, 1.2, 0.8, 1.1], equal_var=False)
    assert c.t == pytest.approx(ref.statistic) and c.critical == pytest.approx(stats.t.ppf(0.975, ref.df)), (c, ref.df)


def test_level_changes_the_quantile():
    a, b = [1.0, 1.3, 0.8, 1.2], [1.5, 1.7, 1.6, 1.9]
    loose, strict = compare_seeds(a, b, paired=True, level=0.8), compare_seeds(a, b, paired=True, level=0.999)
    assert loose.critical == pytest.approx(stats.t.ppf(0.9, 3)) and strict.critical == pytest.approx(stats.t.ppf(0.9995, 3))
    assert loose.called and not strict.called, (loose, strict)


@pytest.mark.parametrize("a, b, kwargs, message", [
    ([1.0, math.nan, 2.0], [1.0, 2.0, 3.0], {}, "a holds a NaN or inf"),
    ([1.0, 2.0, 3.0], [1.0, math.inf, 3.0], {}, "b holds a NaN or inf"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], {"paired": True}, "paired needs one value per random seed in both (3 vs 2)"),
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"level": 1.0}, "level=1.0 must lie strictly between 0 and 1"),
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"level": 0.0}, "level=0.0 must lie strictly between 0 and 1"),
])
def test_bad_input_is_named(a, b, kwargs, message):
    with pytest.raises(ValueError) as err:
        compare_seeds(a, b, **kwargs)
    assert message in str(err.value), err.value
