"""coursekit.evals.price: reading a price from a generation, and the MAE."""

import pytest

from coursekit.evals.price import parse_price, price_mae


@pytest.mark.parametrize("text, price", [("139.00", 139.0), ("$1,299.50 and more", 1299.5), (" 42", 42.0),
                                         ("about 7 dollars, maybe 9", 7.0), ("-3", -3.0)])
def test_parse_price(text, price):
    assert parse_price(text) == price


@pytest.mark.parametrize("text", ["", "no idea", "$.", None])
def test_parse_price_none(text):
    assert parse_price(text) is None


def test_price_mae_counts_unparseable_as_zero():
    out = price_mae(["100.00", "no number", "55"], [90, 40, 50])
    assert out["mae"] == pytest.approx((10 + 40 + 5) / 3)
    assert out["parsed"] == pytest.approx(2 / 3)
    assert out["predictions"] == [100.0, 0.0, 55.0]
    assert price_mae(["x"], [40], unparseable=30)["mae"] == 10
    with pytest.raises(ValueError):
        price_mae(["1"], [1, 2])
