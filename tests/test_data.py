import json

import pytest

from coursekit import data
from coursekit.standin.datasets import story_rows


def test_regenerating_gives_byte_identical_files(tmp_path):
    from coursekit.make_data import ALL_DATASETS

    data.write_all(tmp_path, ALL_DATASETS)
    for name in ALL_DATASETS:
        shipped = (data.DATA_DIR / f"{name}.jsonl").read_bytes()
        assert (tmp_path / f"{name}.jsonl").read_bytes() == shipped, f"data/{name}.jsonl is stale: run python -m coursekit.make_data"


def test_arithmetic_answers_are_right():
    for row in data.arithmetic_rows(200, seed=7):
        system, user, assistant = row["messages"]
        assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
        expr = user["content"].removeprefix("What is ").removesuffix("?")
        assert str(eval(expr)) == assistant["content"]  # the expression is ours: digits and one operator


@pytest.mark.parametrize("max_operand", [2, 9, 12, 40])
def test_arithmetic_max_operand_bounds_every_operand(max_operand):
    seen = set()
    for row in data.arithmetic_rows(300, seed=5, max_operand=max_operand):
        expr = row["messages"][1]["content"].removeprefix("What is ").removesuffix("?")
        a, op, b = expr.split()
        seen.update((int(a), int(b)))
        assert 2 <= int(a) <= max_operand and 2 <= int(b) <= max_operand, expr
        assert op != "*" or int(b) <= 12, expr
        assert str(eval(expr)) == row["messages"][2]["content"]
    assert max(seen) == max_operand, f"the largest operand in 300 rows is {max(seen)}, not {max_operand}"


def test_arithmetic_max_operand_below_two_is_an_error_naming_the_fix():
    with pytest.raises(ValueError, match=r"max_operand=1: .*pass max_operand >= 2"):
        data.arithmetic_rows(3, max_operand=1)


def test_unit_conversions_are_right():
    factors = {(a, b): f for a, b, f in data._UNITS}
    for row in data.unit_rows(100):
        words = row["messages"][1]["content"].rstrip(".").split()  # Convert 7 hours to minutes
        x, src, dst = int(words[1]), words[2], words[4]
        assert int(row["messages"][2]["content"]) == x * factors[(src, dst)]


def test_product_prices_follow_the_rule():
    for row in data.product_rows(100):
        assert row["price"] == data.product_price(row["category"], row["features"], row["warranty_years"])
        assert row["completion"] == f"{row['price']}.00" and row["description"] in row["prompt"]


def test_multiple_choice_label_points_at_the_sensible_ending():
    good = {t[1] for t in data._MC_TEMPLATES}
    rows = data.multiple_choice_rows(40)
    assert all(r["endings"][r["label"]] in good and len(r["endings"]) == 4 for r in rows)
    assert len({r["label"] for r in rows}) > 1  # labels are shuffled, not always the same slot


def test_generators_are_seeded():
    assert story_rows(5, seed=1) == story_rows(5, seed=1)
    assert story_rows(5, seed=1) != story_rows(5, seed=2)


def test_corpora_ship_with_python():
    docs = data.pydoc_documents()
    assert len(docs) > 50 and 300_000 < sum(map(len, docs)) < 1_000_000
    code = data.stdlib_sources(max_files=5)
    assert len(code) == 5 and all("def " in src or "import" in src for src in code)


def test_load_jsonl_uses_the_datasets_api():
    ds = data.load_jsonl("hellaswag_mc")
    assert len(ds) == 64 and set(ds.column_names) == {"ind", "ctx", "endings", "label"}


SCHEMAS = {  # each shipped file's columns, in the order to_jsonl must keep, with their types
    "arithmetic": {"messages": list},
    "units": {"messages": list},
    "products": {"description": str, "category": str, "features": list, "warranty_years": int, "price": int,
                 "prompt": str, "completion": str},
    "hellaswag_mc": {"ind": int, "ctx": str, "endings": list, "label": int},
}


def test_jsonl_round_trips_rows_exactly():
    rows = data.product_rows(3) + [{"ctx": "故事 über café", "label": 0}]
    raw = data.to_jsonl(rows)
    lines = raw.decode("utf-8").split("\n")
    assert lines[-1] == "" and b"\r" not in raw, f"one object per line, \\n endings: {raw[-40:]!r}"
    parsed = [json.loads(line) for line in lines[:-1]]
    assert parsed == rows, f"rows changed on the way through JSON: {parsed} != {rows}"
    assert [list(p) for p in parsed] == [list(r) for r in rows], "key order must be kept (byte-stable files)"
    assert "故事 über café".encode() in raw, f"non-ASCII must be written as UTF-8, not escaped: {lines[-2]!r}"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_shipped_jsonl_rows_have_their_schema(name):
    assert set(SCHEMAS) == set(data.DATASETS), f"SCHEMAS {sorted(SCHEMAS)} != DATASETS {sorted(data.DATASETS)}"
    lines = (data.DATA_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(data.DATASETS[name]()), f"data/{name}.jsonl has {len(lines)} rows"
    for i, line in enumerate(lines):
        row = json.loads(line)
        columns = {key: type(value) for key, value in row.items()}
        assert columns == SCHEMAS[name] and list(row) == list(SCHEMAS[name]), f"data/{name}.jsonl row {i}: {columns}"
        if "messages" in row:
            roles = [m["role"] for m in row["messages"]]
            assert roles == ["system", "user", "assistant"] and all(m["content"] for m in row["messages"]), (
                f"data/{name}.jsonl row {i}: roles {roles}, contents {row['messages']}")
        if "endings" in row:
            assert len(row["endings"]) == 4 and 0 <= row["label"] < 4, f"data/{name}.jsonl row {i}: {row}"


def test_unknown_or_missing_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="Valid names"):
        data.dataset_path("nope")
    with pytest.raises(FileNotFoundError, match="python -m coursekit.make_data"):
        data.dataset_path("arithmetic", data_dir=tmp_path)


def test_installed_without_data_folder_regenerates_into_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DATA_DIR", tmp_path / "absent")
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path / "cache"))
    path = data.dataset_path("units", data_dir=data.DATA_DIR)
    assert path.is_relative_to(tmp_path / "cache")
    assert path.read_bytes() == (data.Path(data.__file__).parent.parent / "data" / "units.jsonl").read_bytes()
