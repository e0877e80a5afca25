"""Pretraining's parts, each on its own: what MFU is made of (FLOPs per token against PyTorch's own FLOP
counter, each GPU's peak figure), the fused optimizer and torch.compile only on CUDA, the validation loss, the
fp16 loss-scale guard, the progress bar and the resume line."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from coursekit import pretraining
from coursekit.gpt2 import GPT2, GPT2Config
from coursekit.pretraining import PretrainConfig
from coursekit.runtime import Precision, Profile
from coursekit.shards import ShardLoader, write_shards

CPU_FP32 = Profile("smoke", "a test", "cpu", Precision("fp32", "a test"))
TINY = GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=64)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    tokens = np.tile(np.random.default_rng(0).integers(0, 64, 97), 30)
    write_shards(tokens[:2500], d, "train")
    write_shards(tokens[2500:], d, "val")
    return d


@pytest.mark.parametrize(("n_layer", "n_embd", "T"), [(2, 64, 256), (1, 32, 64), (3, 48, 96)])
def test_flops_per_token_is_what_the_flop_counter_measures(n_layer, n_embd, T):
    """6N + 12·L·C·T per token for forward + backward, exactly, when N counts the matrices each token passes
    through (the blocks' weights, and wte once more as the LM head) and attention runs as plain matmuls (the math
    kernel: the counter does not see inside the fused CPU kernel, and a full T×T product ignores the mask)."""
    cfg = GPT2Config(n_layer=n_layer, n_head=2, n_embd=n_embd, block_size=T, vocab_size=64)
    torch.manual_seed(0)
    model = GPT2(cfg)
    x = torch.randint(0, cfg.vocab_size, (2, T))  # (B, T)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x, targets=x)[1].backward()
    n_matmul = sum(p.numel() for name, p in model.named_parameters() if p.dim() == 2 and "wpe" not in name)
    measured = counter.get_total_flops() / x.numel()
    assert measured == pretraining.flops_per_token(cfg, T, n_matmul), (measured, n_matmul)


# Dense bf16/fp16 tensor-core peaks from NVIDIA's data sheets (without sparsity), as get_device_name spells them
GPUS = [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12),
        ("NVIDIA L4", 121e12), ("NVIDIA A10G", 125e12), ("Tesla T4", 65e12),
        ("NVIDIA GeForce RTX 4090", None), ("NVIDIA L40S", None)]


@pytest.mark.parametrize(("name", "peak"), GPUS)
def test_peak_flops_by_gpu_name(monkeypatch, name, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: name)
    assert pretraining.peak_flops("cuda") == peak, (name, pretraining.peak_flops("cuda"))


def test_no_peak_flops_off_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "NVIDIA H100 80GB HBM3")
    assert pretraining.peak_flops("cpu") is None and pretraining.peak_flops("mps") is None


def test_fused_adamw_only_on_cuda():
    model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=32))
    cfg = PretrainConfig()
    assert not pretraining.make_optimizer(model, cfg, "cpu").defaults["fused"]
    assert pretraining.make_optimizer(model, cfg, "cuda").defaults["fused"] is True  # built, not stepped, on the CPU


def test_compile_only_on_cuda(monkeypatch):
    model = torch.nn.Linear(2, 2)
    monkeypatch.setattr(torch, "compile", lambda m: ("compiled", m))
    assert pretraining.maybe_compile(model, True, "cuda") == ("compiled", model)
    assert pretraining.maybe_compile(model, False, "cuda") is model


def test_evaluate_is_the_mean_loss_in_eval_mode_and_leaves_the_model_training(shards):
    torch.manual_seed(0)
    model = GPT2(replace(TINY, dropout=0.5))  # dropout: the loss is deterministic only in eval mode
    model.train()
    loader = ShardLoader(shards, "val", 2, 8)
    first = pretraining.evaluate(model, loader, 3, "cpu", CPU_FP32.precision)
    assert model.training, "evaluate must hand the model back in training mode"
    loader = ShardLoader(shards, "val", 2, 8)  # the same 3 batches again, by hand, in eval mode
    model.eval()
    with torch.no_grad():
        by_hand = [model(x, targets=y)[1].item() for x, y in (loader.next_batch() for _ in range(3))]
    assert first == pytest.approx(sum(by_hand) / 3, rel=1e-6), (first, by_hand)
    model.train()
    with torch.no_grad():
        noisy = model(*ShardLoader(shards, "val", 2, 8).next_batch())[1].item()  # dropout on: another value
    assert noisy != pytest.approx(by_hand[0], rel=1e-6), (noisy, by_hand[0])


class _Scaler:
    def __init__(self, scale: float, enabled: bool = True) -> None:
        self.scale, self.enabled = scale, enabled

    def is_enabled(self) -> bool:
        return self.enabled

    def get_scale(self) -> float:
        return self.scale


@pytest.mark.parametrize(("scale", "stops"), [(1e-3, False), (0.5, False), (65536.0, False), (9.9e-4, True)])
def test_the_loss_scale_guard_stops_below_one_thousandth(scale, stops):
    if stops:
        with pytest.raises(FloatingPointError, match=r"collapsed to 9\.9e-04 at step 4"):
            pretraining.check_finite(2.0, 4, _Scaler(scale))
    else:
        pretraining.check_finite(2.0, 4, _Scaler(scale))  # a small but working scale trains on
    pretraining.check_finite(2.0, 4, _Scaler(1e-9, enabled=False))  # a disabled scaler (bf16, fp32) is never judged


@pytest.mark.parametrize("progress", [True, False])
def test_the_progress_bar_follows_the_setting(shards, tmp_path, capsys, progress):
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / "run"), batch_size=2, max_length=8,
                         max_steps=2, warmup_steps=1, progress=progress)
    pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False)
    err = capsys.readouterr().err
    assert ("train:" in err) == progress, err[-300:]
    if progress:  # one tick per optimizer step
        assert "2/2" in err and "3/2" not in err and "4/2" not in err, err[-300:]


def test_a_resumed_run_says_where_it_resumed_from(shards, tmp_path, capsys):
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / "run"), batch_size=2, max_length=8,
                         max_steps=3, warmup_steps=1, progress=False)
    pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False, stop_after=2)
    capsys.readouterr()
    run = pretraining.pretrain(TINY, cfg, profile=CPU_FP32)
    out = capsys.readouterr().out
    assert f"resumed from {tmp_path / 'run' / pretraining.CKPT_NAME} at step 2" in out, out
    done = pretraining.pretrain(TINY, cfg, profile=CPU_FP32)  # already at max_steps: nothing trained
    assert run.step == done.step == 3 and done.lrs == [] and done.tokens_per_s == 0.0, (done.step, done.tokens_per_s)


@pytest.mark.parametrize(("max_steps", "save_steps", "saved_at"), [
    (4, 2, [2, 4]),   # the last step is a multiple: saved once, not twice
    (3, 2, [2, 3]),   # it is not: one more checkpoint at the end
    (3, 5, [3]),      # save_steps past the run: only the end
    (3, 0, [3]),      # 0: only the end
])
def test_checkpoints_every_save_steps_and_once_at_the_end(shards, tmp_path, monkeypatch, max_steps, save_steps,
                                                           saved_at):
    steps = []
    real_save = pretraining._Loop.save
    monkeypatch.setattr(pretraining._Loop, "save", lambda self, path, run: (steps.append(run.step),
                                                                             real_save(self, path, run)))
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / "run"), batch_size=2, max_length=8,
                         max_steps=max_steps, warmup_steps=1, save_steps=save_steps, progress=False)
    pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False)
    assert steps == saved_at, steps


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_each_process_seeds_python_numpy_and_torch(rank):
    """Python and NumPy get the run's random seed (every rank the same data-side draws); torch gets seed + rank,
    so each rank draws its own dropout masks."""
    import random

    from coursekit.runtime import effective_seed

    used = effective_seed(5)
    pretraining._seed_process(5, rank)
    got = (random.random(), np.random.rand(), torch.rand(1).item())
    torch.manual_seed(used + rank)
    want = (random.Random(used).random(), np.random.RandomState(used).rand(), torch.rand(1).item())
    assert got == want, (got, want)


def test_the_run_seeds_python_and_numpy_from_its_config(shards, tmp_path):
    """An eval_fn that draws from Python's and NumPy's generators sees the streams of the config's random seed."""
    import random

    from coursekit.runtime import effective_seed

    random.seed(999)  # states the run must replace
    np.random.seed(999)
    draws = []
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / "run"), batch_size=2, max_length=8,
                         max_steps=1, warmup_steps=1, eval_steps=1, eval_batches=1, seed=7, progress=False)
    pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False,
                         eval_fn=lambda model: draws.append((random.random(), np.random.rand())) or {})
    used = effective_seed(7)
    assert draws == [(random.Random(used).random(), np.random.RandomState(used).rand())], draws


def test_mfu_in_the_progress_bar_is_flops_per_token_times_tokens_per_s_over_the_peak(shards, tmp_path, capsys,
                                                                                    monkeypatch):
    import re

    peak = 1e9  # a made-up GPU, so that the CPU's rate gives a readable fraction
    monkeypatch.setattr(pretraining, "peak_flops", lambda device: peak)
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / "run"), batch_size=2, max_length=8,
                         max_steps=2, warmup_steps=1, progress=True)
    run = pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False)
    shown = re.findall(r"mfu=([\d.]+)%", capsys.readouterr().err)
    assert shown, "no mfu= in the progress bar"
    want = pretraining.flops_per_token(TINY, cfg.max_length, run.model.num_params()) * run.tokens_per_s / peak
    assert float(shown[-1]) / 100 == pytest.approx(want, rel=0.02, abs=6e-4), (shown[-1], want)


def test_tokens_per_s_is_the_step_s_tokens_over_its_time(shards, tmp_path):
    import time

    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / "run"), batch_size=2, max_length=8,
                         max_steps=2, warmup_steps=1, progress=False)
    t0 = time.perf_counter()
    run = pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False)
    wall = time.perf_counter() - t0
    # the last step took less than the whole call and more than a microsecond
    assert cfg.tokens_per_step(1) / wall < run.tokens_per_s < cfg.tokens_per_step(1) / 1e-6, (run.tokens_per_s, wall)



def test_the_bar_ends_at_max_steps_closed_and_the_log_file_is_closed(shards, tmp_path, monkeypatch):
    from tqdm import tqdm as real_tqdm

    bars, files = [], []
    monkeypatch.setattr(pretraining, "tqdm", lambda *a, **k: bars.append(real_tqdm(*a, **k)) or bars[-1])
    monkeypatch.setattr(pretraining, "open", lambda *a, **k: files.append(open(*a, **k)) or files[-1], raising=False)
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / "run"), batch_size=2, max_length=8,
                         max_steps=3, warmup_steps=1, progress=True)
    pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False, log_path=tmp_path / "log.jsonl")
    (bar,) = bars
    assert bar.n == 3 and bar.disable, (bar.n, bar.disable)  # one tick per step; close() disables a bar
    assert len(files) == 1 and files[0].closed, files


def test_gradients_are_clipped_to_max_grad_norm_before_the_step(shards, tmp_path):
    """With the norm clipped to 1e-12, AdamW's step is ~lr·g/eps ≈ 1e-7·lr; unclipped (0 turns clipping off), ~lr."""
    moved = {}
    for norm in (1e-12, 0.0):
        cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path / f"run{norm}"), batch_size=2, max_length=8,
                             max_steps=1, warmup_steps=1, weight_decay=0.0, max_grad_norm=norm, progress=False)
        pretraining._seed_process(cfg.seed, 0)  # as pretrain seeds itself before it builds the model
        start = GPT2(TINY).state_dict()
        run = pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False)
        moved[norm] = max((run.model.state_dict()[k] - v).abs().max().item() for k, v in start.items())
    assert moved[0.0] > 0.5 * cfg.learning_rate and moved[1e-12] < 1e-3 * cfg.learning_rate, moved


def test_eval_steps_without_val_shards_says_there_is_no_validation_loss(tmp_path, capsys):
    d = tmp_path / "train_only"
    write_shards(np.tile(np.arange(64), 40), d, "train")
    cfg = PretrainConfig(data_dir=str(d), output_dir=str(tmp_path / "run"), batch_size=2, max_length=8,
                         max_steps=2, warmup_steps=1, eval_steps=1, eval_batches=1, progress=False)
    run = pretraining.pretrain(TINY, cfg, profile=CPU_FP32, resume=False)
    out = capsys.readouterr().out
    assert f"eval_steps=1, but {d} has no val_*.npy shards: no validation loss" in out, out
    assert run.val == [] and len(run.losses) == 2, (run.val, run.losses)
