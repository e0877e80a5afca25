"""coursekit.sft: packing keeps examples apart, the trainer takes its precision from the profile (tiny models)."""

import dataclasses
import inspect
import os
from pathlib import Path

import pytest
import torch

from coursekit import assets, chat, recipes, sft
from coursekit.runtime import Precision, get_profile


# ---------------------------------------------------------------- packing keeps examples apart
def test_packing_keeps_examples_apart(tiny_llama, tmp_path):
    from trl import SFTConfig, SFTTrainer

    model, tok = tiny_llama
    ds = chat.prepare_dataset([{"prompt": f"Convert {i} hours to minutes.", "completion": str(60 * i)}
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


# ---------------------------------------------------------------- one source of precision, one set of defaults
def test_the_trainer_takes_its_precision_from_the_profile():
    profile = dataclasses.replace(get_profile("smoke", verbose=False), precision=Precision("bf16", "a test"))
    args = sft.trl_arguments(sft.SFTSettings(), profile)
    assert (args["bf16"], args["fp16"]) == (True, False)
    args = sft.trl_arguments(sft.SFTSettings(), get_profile("smoke", verbose=False))
    assert (args["bf16"], args["fp16"]) == (False, False)


def test_settings_map_onto_trl_under_the_same_names(tmp_path):
    s = sft.SFTSettings(max_steps=7, batch_size=3, gradient_accumulation_steps=2, learning_rate=1e-3,
                        lr_scheduler_type="cosine", optim="adamw_torch", max_length=99, warmup_steps=2)
    from trl import SFTConfig

    args = SFTConfig(output_dir=str(tmp_path), **sft.trl_arguments(s, get_profile("smoke", verbose=False)))
    assert (args.max_steps, args.per_device_train_batch_size, args.gradient_accumulation_steps) == (7, 3, 2)
    assert (args.learning_rate, args.lr_scheduler_type.value, args.max_length, args.warmup_steps) == (1e-3, "cosine", 99, 2)


def test_recipe_lora_defaults_are_lora_configs():
    defaults = {k: p.default for k, p in inspect.signature(sft.lora_config).parameters.items()}
    recipe = recipes.Recipe("tiny:llama", [], "out")
    assert (recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout) == (defaults["r"], defaults["lora_alpha"],
                                                                       defaults["lora_dropout"])
    assert recipe.lora_target_modules == list(defaults["target_modules"])


# ---------------------------------------------------------------- bad settings, rows that do not fit
@pytest.mark.parametrize("kw, match", [
    ({"max_steps": 0}, r"max_steps=0: must be a positive number of optimizer steps; use -1 to train by epochs"),
    ({"max_steps": -1, "num_train_epochs": 0}, r"num_train_epochs=0: must be > 0 to train by epochs"),
    ({"batch_size": 0}, r"batch_size=0: must be a positive whole number"),
])
def test_settings_that_trl_would_misread_fail_by_name(kw, match):
    with pytest.raises(ValueError, match=match):
        sft.SFTSettings(**kw)


def _labelled(lengths_and_firsts):
    from datasets import Dataset

    return Dataset.from_list([{"input_ids": list(range(n)), "labels": [-100] * first + list(range(first, n))}
                              for n, first in lengths_and_firsts])


def test_check_fits_rejects_a_reply_past_max_length_and_passes_one_that_fits(capsys):
    with pytest.raises(ValueError, match=r"max_length \(sequence_len\) 8 cuts off every reply.*raise max_length to 12"):
        sft._check_fits(_labelled([(12, 9)]), 8, packing=False)  # the reply starts at token 9, past 8
    sft._check_fits(_labelled([(12, 7)]), 8, packing=False)  # token 7 trains: it fits
    sft._check_fits(_labelled([(12, 9)]), 8, packing=True)  # packing splits long rows: not checked
    assert capsys.readouterr().out == "", "a dataset that fits prints nothing"
    sft._check_fits(_labelled([(12, 7), (12, 9)]), 8, packing=False)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "1 of 2 examples (first: row 1)" in out, f"one line naming the lost row: {out!r}"
    with pytest.raises(ValueError, match="no rows"):
        sft._check_fits(_labelled([]), 8, packing=False)


def test_a_row_too_long_fails_before_any_training(tiny_llama, tmp_path, monkeypatch):
    from trl import SFTTrainer

    trained = []
    monkeypatch.setattr(SFTTrainer, "train", lambda self, *a, **k: trained.append(1))
    rows = [{"prompt": "word " * 60, "completion": "yes"}]
    with pytest.raises(ValueError, match="cuts off every reply"):
        sft.finetune(*tiny_llama, rows, sft.SFTSettings(max_steps=1, max_length=16), output_dir=tmp_path / "o",
                     progress=False)
    assert trained == [], "the error comes before training"


# ---------------------------------------------------------------- the output folder
ROWS = [{"prompt": f"{a} + {a} =", "completion": str(2 * a)} for a in range(4)]


def _no_training(monkeypatch):
    from trl import SFTTrainer

    trained = []
    monkeypatch.setattr(SFTTrainer, "train", lambda self, *a, **k: trained.append(1))
    return trained


def test_an_unwritable_output_dir_fails_before_any_training(tiny_llama, tmp_path, monkeypatch):
    trained = _no_training(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(sft.OutputDirError, match=r"a-file is a file, so the folder cannot be made there"):
        sft.finetune(*tiny_llama, ROWS, sft.SFTSettings(max_steps=1), output_dir=blocker / "run", progress=False)
    assert trained == [], "nothing trained before the error"


def test_a_read_only_output_dir_fails_before_any_training(tiny_llama, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere: emulate the read-only folder's refusal
            def refuse(*a, **k):
                raise PermissionError(13, "Permission denied")
            monkeypatch.setattr(sft.tempfile, "TemporaryFile", refuse)
        trained = _no_training(monkeypatch)
        with pytest.raises(sft.OutputDirError, match=r"locked/run is not writable \(Permission denied in .*locked\)"):
            sft.finetune(*tiny_llama, ROWS, sft.SFTSettings(max_steps=1), output_dir=locked / "run", progress=False)
        assert trained == [], "nothing trained before the error"
    finally:
        locked.chmod(0o700)


def test_a_failed_final_save_keeps_the_adapter_and_says_where(tmp_path, monkeypatch):
    from trl import SFTTrainer

    model, tok = assets.load_tiny("llama")  # trained here: not the shared fixture
    real_save, out = SFTTrainer.save_model, tmp_path / "out"

    def save_model(self, output_dir=None, *a, **k):
        if Path(output_dir) == out:
            raise PermissionError(13, "Permission denied", str(out))  # e.g. the permissions changed mid-run
        return real_save(self, output_dir, *a, **k)

    monkeypatch.setattr(SFTTrainer, "save_model", save_model)
    with pytest.raises(sft.OutputDirError) as err:
        sft.finetune(model, tok, ROWS, sft.SFTSettings(max_steps=1), output_dir=out, progress=False,
                     lora=sft.lora_config())
    msg = str(err.value)
    kept = Path(err.value.run.output_dir)
    assert kept != out and (kept / "adapter_model.safetensors").exists(), f"adapter kept in {kept}: {msg}"
    assert f"it was saved to {kept} instead" in msg and "PermissionError" in msg and "\n" not in msg, msg
    assert len(err.value.run.losses) == 1, "the trained run comes with the error"


def test_an_earlier_run_is_replaced_only_with_overwrite_output_dir(tmp_path, capsys):
    model, tok = assets.load_tiny("llama")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_text("an earlier run's full model")
    (out / "checkpoint-5").mkdir()
    with pytest.raises(sft.OutputDirError, match=r"already holds files \(checkpoint-5, model.safetensors\): pass "
                                                 r"overwrite_output_dir=True"):
        sft.finetune(model, tok, ROWS, sft.SFTSettings(max_steps=1), output_dir=out, progress=False,
                     lora=sft.lora_config())
    assert (out / "model.safetensors").exists(), "refused: nothing removed"
    capsys.readouterr()
    sft.finetune(model, tok, ROWS, sft.SFTSettings(max_steps=1), output_dir=out, progress=False, lora=sft.lora_config(),
                 overwrite_output_dir=True)
    names = sorted(p.name for p in out.iterdir())
    assert "model.safetensors" not in names and "checkpoint-5" not in names, f"stale files stayed: {names}"
    assert "adapter_model.safetensors" in names, names
    notice = [line for line in capsys.readouterr().out.splitlines() if "overwrite_output_dir" in line]
    assert notice == [f"overwrite_output_dir: removed the 2 file(s) of the earlier run from {out}"], notice


def test_overwrite_output_dir_never_empties_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sft.OutputDirError, match="the working folder"):
        sft.check_output_dir(tmp_path, overwrite_output_dir=True)
    assert (tmp_path / "notes.txt").exists()
