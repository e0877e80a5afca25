"""Pretraining's bad inputs fail before any work, in one line naming the fix; the CLI says what it does."""

from dataclasses import replace

import numpy as np
import pytest

from coursekit import pretrain as cli
from coursekit import pretraining
from coursekit.gpt2 import GPT2Config
from coursekit.pretraining import PretrainConfig
from coursekit.runtime import Precision, Profile
from coursekit.shards import write_shards

CPU_FP32 = Profile("smoke", "a test", "cpu", Precision("fp32", "a test"))
MODEL = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--vocab-size", "64"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    tokens = np.tile(np.random.default_rng(0).integers(0, 64, 97), 30)
    write_shards(tokens[:2500], d, "train")
    write_shards(tokens[2500:], d, "val")
    return d


@pytest.mark.parametrize(("setting", "value", "fix"), [
    ("max_steps", 0, "number of optimizer steps"), ("max_steps", -1, "number of optimizer steps"),
    ("gradient_accumulation_steps", 0, "use 1 for no accumulation"), ("batch_size", 0, "rows per micro-batch"),
    ("eval_steps", -1, "use 0 for no evaluation")])
def test_a_bad_setting_is_one_line_naming_it_and_the_fix(setting, value, fix):
    with pytest.raises(ValueError) as err:
        PretrainConfig(**{setting: value})
    text = str(err.value)
    assert text.startswith(f"{setting}={value}: must be at least") and fix in text and "\n" not in text, text


@pytest.mark.parametrize(("setting", "least"), [
    ("max_steps", 1), ("gradient_accumulation_steps", 1), ("batch_size", 1), ("max_length", 1), ("eval_batches", 1),
    ("warmup_steps", 0), ("eval_steps", 0), ("save_steps", 0)])
def test_each_limit_accepts_its_least_value_and_refuses_one_less(setting, least):
    assert getattr(PretrainConfig(**{setting: least}), setting) == least
    with pytest.raises(ValueError, match=rf"^{setting}={least - 1}: must be at least {least}; "):
        PretrainConfig(**{setting: least - 1})


def test_the_defaults_are_gpt3_small_s_optimizer_and_a_short_cpu_run():
    """GPT-3 small's optimizer settings (Brown et al. 2020, table 2.1 and appendix B: peak lr 6e-4, cosine to 10%,
    weight decay 0.1, clipping at 1.0), nanoGPT's random seed 1337; a 100-step run of 8 × 128 tokens, 10 of warm-up,
    no evaluation and one checkpoint at the end, with a progress bar (as `python -m coursekit.pretrain --help` shows)."""
    cfg = PretrainConfig()
    got = (cfg.learning_rate, cfg.min_lr_ratio, cfg.weight_decay, cfg.max_grad_norm, cfg.seed, cfg.batch_size,
           cfg.max_length, cfg.gradient_accumulation_steps, cfg.max_steps, cfg.warmup_steps, cfg.eval_steps,
           cfg.eval_batches, cfg.save_steps, cfg.torch_compile, cfg.progress)
    assert got == (6e-4, 0.1, 0.1, 1.0, 1337, 8, 128, 1, 100, 10, 0, 4, 0, False, True), got


def test_the_schedule_reaches_its_floor_when_one_step_follows_the_warm_up():
    cfg = PretrainConfig(learning_rate=1e-3, warmup_steps=10, max_steps=11, min_lr_ratio=0.1)
    assert pretraining.lr_at(9, cfg) == pytest.approx(1e-3), pretraining.lr_at(9, cfg)
    assert pretraining.lr_at(10, cfg) == pytest.approx(1e-3), pretraining.lr_at(10, cfg)
    assert pretraining.lr_at(11, cfg) == pytest.approx(1e-4), pretraining.lr_at(11, cfg)
    flat = PretrainConfig(learning_rate=1e-3, warmup_steps=10, max_steps=10)  # no decay span left: stays at the peak
    assert pretraining.lr_at(10, flat) == pytest.approx(1e-3), pretraining.lr_at(10, flat)


def test_the_cli_rejects_a_bad_setting_before_training(shards, tmp_path, capsys):
    out = tmp_path / "run"
    for flags, expect in ((["--max-steps", "0"], "error: max_steps=0: must be at least 1"),
                          (["--gradient-accumulation-steps", "0"], "error: gradient_accumulation_steps=0"),
                          (["--precision", "banana"], "invalid choice: 'banana' (choose from 'auto', 'bf16'")):
        with pytest.raises(SystemExit) as code:
            cli.main([*MODEL, "--data-dir", str(shards), "--output-dir", str(out), *flags])
        err = capsys.readouterr().err
        assert code.value.code == 2 and expect in err, (flags, code.value.code, err[-300:])
    assert not out.exists(), f"a rejected run wrote {sorted(out.iterdir())}"


def test_profile_for_an_unknown_precision_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"--precision banana: unknown precision; use one of auto, bf16, fp16, fp32"):
        cli.profile_for("banana", CPU_FP32)


def test_the_cli_without_progress_prints_a_start_line_and_a_summary(shards, tmp_path, capsys):
    cli.main([*MODEL, "--data-dir", str(shards), "--output-dir", str(tmp_path), "--max-steps", "2",
              "--batch-size", "2", "--max-length", "16", "--eval-steps", "2", "--progress", "false", "--no-resume"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("pretraining: 1 layers × 16 wide, vocab 64 · 2 steps of 32 tokens"), lines[0]
    assert lines[1].startswith("done: step 2 · final loss ") and "validation loss" in lines[1], lines[1]


def test_the_nan_message_names_the_logged_step(shards, tmp_path, monkeypatch):
    losses = iter([3.0, 2.5, float("nan")])
    monkeypatch.setattr(pretraining._Loop, "_accumulate", lambda self, model: next(losses))
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path), batch_size=2, max_length=16,
                         max_steps=5, progress=False)
    with pytest.raises(FloatingPointError, match=r"Loss is nan at step 3:") as err:  # steps are logged from 1
        pretraining.pretrain(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=64), cfg,
                             profile=CPU_FP32, resume=False)
    assert "step 2" not in str(err.value), str(err.value)


def test_token_ids_past_the_vocabulary_fail_before_training(shards, tmp_path):
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / "run"), batch_size=2, max_length=16,
                         max_steps=2, progress=False)
    small = GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=32)
    top = int(np.load(shards / "train_000000.npy").max())
    with pytest.raises(ValueError, match=rf"train_000000.npy holds token id {top}, but the model's vocab_size is "
                                         rf"32: set vocab_size to at least {top + 1}"):
        pretraining.pretrain(small, cfg, profile=CPU_FP32, resume=False)
    assert not (tmp_path / "run").exists(), "it trained (and checkpointed) before failing"
    ok = pretraining.pretrain(replace(small, vocab_size=top + 1), cfg, profile=CPU_FP32, resume=False)
    assert ok.step == 2, ok.step
