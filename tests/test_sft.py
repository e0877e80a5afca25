"""coursekit.sft: data forms, assistant-only labels, packing, recipes, training and the CLI (tiny models)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from coursekit import assets, course, sft
from coursekit.runtime import Precision

RECIPES = sorted((course.ROOT / "recipes").glob("*.yml"))
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "It is 6."},
]


@pytest.fixture(scope="module")
def smol_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(assets.smollm2_path())


def tiny_recipe(tmp_path, **kw):
    base = {"base_model": "tiny:llama", "datasets": [{"path": "data/units.jsonl", "split": "train[:48]"}],
            "output_dir": str(tmp_path / "out"), "max_steps": 3, "micro_batch_size": 4, "learning_rate": 1e-3,
            "sequence_len": 128, "lora_target_modules": "all-linear", "val_set_size": 4}
    return {**base, **kw}


# ---------------------------------------------------------------- three forms -> messages
def test_messages_rows_pass_through_and_sharegpt_is_converted():
    assert sft.to_messages({"messages": CHAT}) == CHAT
    share = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    assert sft.to_messages(share, fields_map={"messages": "conversations"}) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def test_prompt_completion_rows_with_field_mapping_and_system():
    row = {"synopsis": "A fox.", "short_story": "Once upon a time..."}
    out = sft.to_messages(row, fields_map={"prompt": "synopsis", "completion": "short_story"}, system="Tell stories.")
    assert out == [{"role": "system", "content": "Tell stories."}, {"role": "user", "content": "A fox."},
                   {"role": "assistant", "content": "Once upon a time..."}]


def test_alpaca_rows_join_instruction_and_input():
    assert sft.to_messages({"instruction": "Add.", "input": "2 + 2", "output": "4"}) == [
        {"role": "user", "content": "Add.\n\n2 + 2"}, {"role": "assistant", "content": "4"}]
    assert sft.to_messages({"instruction": "Say hi.", "input": "", "output": "hi"})[0]["content"] == "Say hi."
    assert sft.detect_format({"instruction": "x", "output": "y"}) == "alpaca"


@pytest.mark.parametrize("row, field", [
    ({"prompt": "2 + 2 ="}, "completion"),
    ({"prompt": "2 + 2 =", "completion": 4}, "completion"),
    ({"instruction": "Add.", "output": ""}, "output"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "only a question"}]}, "messages"),
])
def test_a_bad_row_names_its_index_and_field(row, field):
    rows = [{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}, row]
    with pytest.raises(sft.DataError) as err:
        sft.convert_rows(rows)
    assert err.value.index == 2 and err.value.field == field
    assert str(err.value).startswith("row 2:") and repr(field.split(".")[0])[1:-1] in str(err.value)


def test_a_row_of_no_known_form_lists_the_forms():
    with pytest.raises(sft.DataError, match="prompt_completion .*alpaca"):
        sft.to_messages({"question": "x"})


def test_held_out_split_shares_no_prompt_with_train():
    rows = [{"prompt": f"q{i % 5}", "completion": "a"} for i in range(20)]
    train, test = sft.held_out_split(rows, 2, seed=0)
    assert len(test) == 2 and len(train) == 12
    assert not {r["prompt"] for r in test} & {r["prompt"] for r in train}


# ---------------------------------------------------------------- loss only on the assistant
@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_unmasked_tokens_are_exactly_the_replies(which, tiny_llama, smol_tok):
    tok = tiny_llama[1] if which == "tiny" else smol_tok
    ex = sft.tokenize_chat(tok, CHAT)
    assert sft.trained_text(tok, ex) == ["4<|im_end|>", "It is 6.<|im_end|>"]  # each reply + end of turn
    assert len(ex["input_ids"]) == len(ex["labels"])
    without_eot = sft.tokenize_chat(tok, CHAT, end_of_turn=False)
    assert sft.trained_text(tok, without_eot) == ["4", "It is 6."]


def test_plain_template_trains_on_the_completion_and_eos(smol_tok):
    ex = sft.tokenize_chat(smol_tok, [{"role": "user", "content": "Price is $"},
                                      {"role": "assistant", "content": "12.00"}], template="plain")
    assert smol_tok.decode(ex["input_ids"]) == "<|im_start|>Price is $12.00<|im_end|>"  # bos, prompt, reply, eos
    assert sft.trained_text(smol_tok, ex) == ["12.00<|im_end|>"]


def test_prepared_dataset_trains_on_units_answers(tiny_llama):
    from coursekit.data import load_jsonl

    rows = list(load_jsonl("units"))[:5]
    ds = sft.prepare_dataset(rows, tiny_llama[1])
    assert ds.column_names == ["input_ids", "labels"]
    assert [sft.trained_text(tiny_llama[1], e) for e in ds] == [[r["messages"][-1]["content"] + "<|im_end|>"] for r in rows]
    html = sft.masked_html(tiny_llama[1], ds[0])
    assert html.count("<span") == len(ds[0]["input_ids"]) and "#c8f7c5" in html


# ---------------------------------------------------------------- packing keeps examples apart
def test_packing_keeps_examples_apart(tiny_llama, tmp_path):
    from trl import SFTConfig, SFTTrainer

    model, tok = tiny_llama
    ds = sft.prepare_dataset([{"prompt": f"Convert {i} hours to minutes.", "completion": str(60 * i)}
                              for i in range(1, 7)], tok)
    args = SFTConfig(output_dir=str(tmp_path), packing=True, max_length=256, per_device_train_batch_size=1,
                     report_to="none", activation_checkpointing=False, bf16=False,
                     dataloader_pin_memory=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    pos = batch["position_ids"][0]
    starts = (pos == 0).nonzero().flatten().tolist()
    assert len(starts) > 1, "several examples share one packed row"
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        bounds = [*starts, len(pos)]
        for a, b in zip(bounds, bounds[1:]):  # each example alone gives the same logits: no cross-attention
            alone = model(input_ids=batch["input_ids"][:, a:b]).logits[0]
            torch.testing.assert_close(packed[a:b], alone, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- recipes
@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates(path):
    recipe = sft.load_recipe(path)
    assert recipe.datasets and recipe.output_dir and recipe.base_model
    assert sft.describe(recipe)


def test_the_shipped_recipes_cover_the_seeds():
    bases = {sft.load_recipe(p).base_model for p in RECIPES}
    assert {"packaged:smollm2", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "Qwen/Qwen3-0.6B",
            "meta-llama/Llama-3.2-3B"} <= bases
    qlora = sft.load_recipe(course.ROOT / "recipes" / "llama32_price_qlora.yml")
    assert qlora.load_in_4bit and qlora.bnb_4bit_quant_type == "nf4" and qlora.bnb_4bit_use_double_quant


def test_unknown_key_lists_the_valid_ones(tmp_path):
    with pytest.raises(sft.RecipeError) as err:
        sft.load_recipe(tiny_recipe(tmp_path, lr=1e-3))
    msg = str(err.value)
    assert "'lr'" in msg and "Valid keys:" in msg and "learning_rate" in msg and "micro_batch_size" in msg
    with pytest.raises(sft.RecipeError, match="Valid keys: path, name, split, format, fields, system"):
        sft.load_recipe(tiny_recipe(tmp_path, datasets=[{"path": "data/units.jsonl", "type": "alpaca"}]))


@pytest.mark.parametrize("change, match", [
    ({"datasets": [{"split": "train"}]}, r"datasets\[0\] is missing 'path'"),
    ({"base_model": None}, "missing required key.*base_model"),
    ({"datasets": [{"path": "data/units.jsonl", "format": "sharegpt"}]}, "valid formats"),
    ({"datasets": [{"path": "data/units.jsonl", "fields": {"answer": "x"}}]}, "valid fields"),
    ({"optimizer": "adam_w"}, "valid values: adamw_torch"),
    ({"learning_rate": "fast"}, "'learning_rate' must be a float"),
])
def test_bad_recipes_fail_clearly(tmp_path, change, match):
    with pytest.raises(sft.RecipeError, match=match):
        sft.load_recipe(tiny_recipe(tmp_path, **change))


def test_a_field_mapping_to_a_missing_column_names_it(tmp_path):
    spec = sft.load_recipe(tiny_recipe(tmp_path, datasets=[
        {"path": "data/stories.jsonl", "fields": {"prompt": "synopsis", "completion": "short_story"}}])).datasets[0]
    with pytest.raises(sft.RecipeError, match="'short_story'.*Its columns: synopsis, story"):
        sft.load_recipe_dataset(spec)


def test_yaml_numbers_and_qlora_are_read_as_meant(tmp_path):
    path = tmp_path / "r.yml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, learning_rate="2e-4", adapter="qlora")))
    recipe = sft.load_recipe(path)
    assert recipe.learning_rate == 2e-4 and recipe.load_in_4bit  # YAML reads 2e-4 as a string


# ---------------------------------------------------------------- training
def test_tiny_recipe_trains_and_saves_the_adapter(tmp_path):
    run = sft.run_recipe(tiny_recipe(tmp_path))
    assert len(run.losses) == 3 and all(math.isfinite(x) for x in run.losses)
    out = Path(run.output_dir)
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    assert (out / "tokenizer_config.json").exists()
    assert set(run.eval_metrics) == {"loss", "token_accuracy", "exact_match"}
    assert math.isfinite(run.eval_metrics["loss"])


def test_qlora_recipe_loads_4bit_on_cpu(tmp_path):
    pytest.importorskip("bitsandbytes")
    run = sft.run_recipe(tiny_recipe(tmp_path, adapter="qlora", max_steps=2, val_set_size=0))
    kinds = {type(m).__name__ for m in run.model.modules()}
    assert "Linear4bit" in kinds and all(math.isfinite(x) for x in run.losses)


def test_gradient_checkpointing_saves_activation_memory(tiny_llama):
    model, tok = tiny_llama
    ex = sft.tokenize_chat(tok, CHAT)
    batch = {"input_ids": torch.tensor([ex["input_ids"]]), "labels": torch.tensor([ex["labels"]])}
    off = sft.saved_activation_bytes(model, batch)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    try:
        on = sft.saved_activation_bytes(model, batch)
    finally:
        model.activation_checkpointing_disable()
    assert 0 < on < off


# ---------------------------------------------------------------- bad input: tokens, precision, bitsandbytes
def test_gated_model_without_token_names_hf_token(monkeypatch):
    monkeypatch.setattr(sft, "_hf_token", lambda: None)
    with pytest.raises(assets.AssetError, match="HF_TOKEN"):
        sft.run_recipe(course.ROOT / "recipes" / "llama32_price_qlora.yml")


def test_bf16_on_a_gpu_without_it_falls_back_to_fp16(monkeypatch, capsys):
    monkeypatch.setattr(sft, "pick_precision", lambda device: Precision("fp16", "T4"))
    assert sft.resolve_precision(True, device="cuda").name == "fp16"
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    assert sft.resolve_precision("auto", device="cuda").name == "fp16"
    monkeypatch.setattr(sft, "pick_precision", lambda device: Precision("bf16", "H100"))
    assert sft.resolve_precision(True, device="cuda").name == "bf16"


def test_kbit_where_bitsandbytes_cannot_falls_back_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sft, "_bnb_problem", lambda device: "bitsandbytes cannot run here")
    recipe = sft.load_recipe(tiny_recipe(tmp_path, load_in_8bit=True))
    assert sft.quantization_config(recipe, Precision("fp32", "cpu"), "cpu") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "8-bit" in out and "unquantized" in out


# ---------------------------------------------------------------- CLI
def test_cli_runs_a_recipe(tmp_path):
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, max_steps=2)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "coursekit.sft", str(path)], capture_output=True, text=True,
                          env=env, cwd=course.ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "adapter saved to" in done.stdout and (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_cli_check_reports_a_bad_recipe(tmp_path, capsys):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, epochs=3)))
    assert sft.main([str(path), "--check"]) == 2
    assert "Valid keys" in capsys.readouterr().err
    assert sft.main([str(RECIPES[0]), "--check"]) == 0
