"""coursekit.finetune and coursekit.recipes on bad input: one `error: ...` line, exit code 2, before the model loads."""

import re

import pytest
import yaml

from coursekit import assets, course, finetune, hub, recipes


def write_recipe(tmp_path, data_path="data/units.jsonl", **kw):
    base = {"base_model": "tiny:llama", "datasets": [{"path": str(data_path)}], "output_dir": str(tmp_path / "out"),
            "max_steps": 2, "max_length": 128}
    path = tmp_path / "r.yml"
    path.write_text(yaml.safe_dump({**base, **kw}))
    return path


def data_file(tmp_path, content: bytes):
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    return path


def no_model_load(monkeypatch):
    loads = []
    monkeypatch.setattr(assets, "load_causal_lm", lambda *a, **k: loads.append(a) or pytest.fail("model loaded"))
    return loads


def run_cli(capsys, argv):
    code = finetune.main(argv)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("content, expected", [
    (b"", r"Dataset file '.*d.jsonl' \(datasets\[0\]\) is empty: it holds no rows; add rows"),
    (b"\n  \n\n", r"Dataset file '.*d.jsonl' \(datasets\[0\]\) is blank: it holds no rows"),
    (b'{"prompt": "a", "completion": "b"}\n{"prompt": "\xff", "completion": "c"}\n',
     r"Dataset file '.*d.jsonl' line 2 is not UTF-8 \(byte 0xff at column 13\): save the file as UTF-8"),
    (b'{"prompt": "a", "completion": "b"}\n{"prompt": "a", \n',
     r"Dataset file '.*d.jsonl' line 2 is not valid JSON"),
    (b'{"prompt": "a", "completion": "b"}\n{"prompt": "c"}\n',
     r"dataset '.*d.jsonl', row 1: missing field 'completion'"),
])
@pytest.mark.parametrize("check", [True, False], ids=["--check", "run"])
def test_a_bad_dataset_file_is_one_error_line_before_the_model_loads(tmp_path, capsys, monkeypatch, content,
                                                                      expected, check):
    no_model_load(monkeypatch)
    path = write_recipe(tmp_path, data_file(tmp_path, content))
    code, err = run_cli(capsys, [str(path), *(["--check"] if check else [])])
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), f"exit {code}, stderr {err!r}"
    assert "Traceback" not in err
    assert re.search(expected, err), f"{expected!r} not in {err!r}"


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_text("base_model: x\n datasets: [\n"),
     r"Recipe file '.*bad.yml' line 2, column 10 is not valid YAML \(mapping values are not allowed here\): fix"),
    (lambda p: None, r"Recipe file '.*bad.yml' not found \(looked in .*\): give the path of a .yml recipe"),
    (lambda p: p.write_bytes(b"base_model: \xff\n"), r"Recipe file '.*bad.yml' line 1 is not UTF-8 text"),
    (lambda p: p.write_text(""), r"Recipe file '.*bad.yml' holds nothing: a recipe is a YAML mapping"),
])
def test_a_bad_recipe_file_names_itself_and_the_line(tmp_path, capsys, make, expected):
    path = tmp_path / "bad.yml"
    make(path)
    code, err = run_cli(capsys, [str(path), "--check"])
    assert code == 2 and err.count("\n") == 1 and re.match("error: " + expected, err), f"exit {code}: {err!r}"


@pytest.mark.parametrize("change, expected", [
    ({"max_steps": 0}, ("error: Recipe: max_steps=0: must be a positive number of optimizer steps; use -1 to train "
                        "by epochs")),
    ({"max_steps": -1, "num_epochs": 0}, "the recipe's num_epochs is num_train_epochs"),
    ({"val_set_size": 5000}, ("error: val_set_size=5000 (data/units.jsonl): holding out 5000 prompts leaves none "
                              "to train on")),
    ({"val_set_size": -1}, "error: val_set_size=-1: must be 0"),
])
def test_recipe_settings_that_cannot_train_fail_at_check(tmp_path, capsys, change, expected):
    code, err = run_cli(capsys, [str(write_recipe(tmp_path, **change)), "--check"])
    assert code == 2 and err.count("\n") == 1 and expected in err, f"exit {code}: {err!r}"


def test_a_missing_dataset_file_fails_check_and_run_before_the_model_loads(tmp_path, capsys, monkeypatch):
    no_model_load(monkeypatch)
    path = write_recipe(tmp_path, tmp_path / "nope.jsonl")
    for argv in ([str(path), "--check"], [str(path)]):
        code, err = run_cli(capsys, argv)
        assert code == 2 and "nope.jsonl' (datasets[0]) not found" in err and "recipe OK" not in err, err


def test_the_gated_model_error_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(hub, "_hf_token", lambda: None)
    code, err = run_cli(capsys, [str(course.ROOT / "recipes" / "llama32_price_qlora.yml"), "--output-dir",
                                 "/tmp/coursekit-gated-test-never-written"])
    assert code == 2 and err.count("\n") == 1 and "is gated" in err and "HF_TOKEN" in err, f"exit {code}: {err!r}"


def test_any_asset_error_is_one_error_line(tmp_path, capsys, monkeypatch):
    def unreachable(*a, **k):
        raise hub.hub_error("someone/model", OSError("offline\nsecond line"))

    monkeypatch.setattr(recipes, "load_model", unreachable)
    code, err = run_cli(capsys, [str(write_recipe(tmp_path))])
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: Could not load 'someone/model'."), err


def test_an_unwritable_output_dir_fails_check(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = run_cli(capsys, [str(write_recipe(tmp_path, output_dir=str(tmp_path / "file" / "out"))), "--check"])
    assert code == 2 and "is a file, so the folder cannot be made there" in err, err


def test_a_rerun_needs_overwrite_output_dir_and_leaves_no_stale_file(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.bin").write_text("an earlier run's file")
    path = write_recipe(tmp_path, val_set_size=0)
    code, err = run_cli(capsys, [str(path), "--check"])
    assert code == 2 and "pass overwrite_output_dir=True" in err, err
    assert finetune.main([str(path), "--overwrite-output-dir"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "stale.bin" not in names and "adapter_model.safetensors" in names, names
    assert recipes.load_recipe(path, overwrite_output_dir=True).overwrite_output_dir is True
