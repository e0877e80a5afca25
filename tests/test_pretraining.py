import itertools
import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from coursekit import checkpoints, pretraining
from coursekit.gpt2 import GPT2, GPT2Config
from coursekit.pretraining import PretrainConfig
from coursekit.runtime import Precision, Profile
from coursekit.shards import write_shards

MODEL = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--vocab-size", "64"]
RUN = ["--batch-size", "4", "--max-length", "16", "--learning-rate", "3e-3", "--warmup-steps", "3",
       "--progress", "false"]
CPU_FP32 = Profile("smoke", "a test", "cpu", Precision("fp32", "a test"))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    tokens = np.tile(rng.integers(0, 64, 97), 200)  # a repeating pattern: learnable, so losses move
    write_shards(tokens[:15000], d, "train", shard_tokens=6000)
    write_shards(tokens[15000:], d, "val")
    return d


def run_cli(args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "coursekit.pretrain", *args], env=env, **kw)


def logged_losses(log_path):
    """(step, loss) pairs from a ``--log-file`` file; a resumed run's later lines win."""
    seen = {}
    for line in log_path.read_text().splitlines():
        row = json.loads(line)
        seen[row["step"]] = row["loss"]
    return sorted(seen.items())


def test_lr_schedule_warms_up_then_decays_to_ten_percent():
    cfg = PretrainConfig(learning_rate=1.0, warmup_steps=10, max_steps=110)
    lrs = [pretraining.lr_at(s, cfg) for s in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:])) and lrs[110] == pytest.approx(0.1)


def test_weight_decay_only_on_matrices():
    model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=20))
    decay, no_decay = pretraining.make_optimizer(model, PretrainConfig(), "cpu").param_groups
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == model.num_params()


def test_training_learns_and_checkpoint_is_clean(shards, tmp_path):
    mcfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=64)
    cfg = PretrainConfig(data_dir=str(shards), output_dir=str(tmp_path), batch_size=4, max_length=16, max_steps=30,
                         learning_rate=3e-3, warmup_steps=3, eval_steps=10, progress=False)
    seen = []
    out = pretraining.pretrain(mcfg, cfg, profile=CPU_FP32, resume=False,
                               eval_fn=lambda m: seen.append(m.training) or {"n": len(seen)})
    assert np.mean(out.losses[-5:]) < np.mean(out.losses[:5]) - 0.5
    assert [s for s, _ in out.val] == [10, 20, 30]
    assert out.evals == [(10, {"n": 1}), (20, {"n": 2}), (30, {"n": 3})] and seen == [False] * 3
    ckpt = checkpoints.load_checkpoint(tmp_path / checkpoints.CKPT_NAME, mcfg)  # weights_only=True inside
    assert ckpt["step"] == 30 and not any(k.startswith("_orig_mod.") for k in ckpt["model"])
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match=r"n_layer: checkpoint 2 vs now 3"):
        checkpoints.load_checkpoint(tmp_path / checkpoints.CKPT_NAME,
                                    GPT2Config(n_layer=3, n_head=2, n_embd=32, block_size=32, vocab_size=64))


def test_the_profile_alone_sets_the_precision(shards, tmp_path):
    mcfg = GPT2Config(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64)
    cfg = PretrainConfig(data_dir=str(shards), batch_size=2, max_length=16, max_steps=2, progress=False)
    fp32 = pretraining.pretrain(mcfg, replace(cfg, output_dir=str(tmp_path / "a")), profile=CPU_FP32)
    bf16_profile = replace(CPU_FP32, precision=Precision("bf16", "a test"))  # CPU autocast runs bf16 too
    bf16 = pretraining.pretrain(mcfg, replace(cfg, output_dir=str(tmp_path / "b")), profile=bf16_profile)
    assert fp32.step == bf16.step == 2 and fp32.losses != bf16.losses
    assert np.allclose(fp32.losses, bf16.losses, rtol=0.05)


def test_nan_loss_is_reported_not_trained_through():
    with pytest.raises(FloatingPointError, match="step 7"):
        pretraining.check_finite(float("nan"), 7, None)
    scaler = torch.amp.GradScaler("cpu", init_scale=1e-4)
    with pytest.raises(FloatingPointError, match="loss scale collapsed"):
        pretraining.check_finite(1.0, 3, scaler)


def test_compile_on_cpu_falls_back_in_one_line(capsys):
    model = torch.nn.Linear(2, 2)
    assert pretraining.maybe_compile(model, True, "cpu") is model
    assert capsys.readouterr().out.count("\n") == 1


def test_stopped_run_resumes_bit_for_bit_with_dropout_and_validation(shards, tmp_path):
    """Every number the run reports (train losses, validation losses, evaluations) equals the uninterrupted
    run's after a stop at step 5 and a resume; dropout makes the RNG state matter, eval_steps=3 the val loader's."""
    mcfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=64, dropout=0.1)
    cfg = PretrainConfig(data_dir=str(shards), batch_size=4, max_length=16, max_steps=12, learning_rate=3e-3,
                         warmup_steps=3, eval_steps=3, eval_batches=2, progress=False)

    def draws(model):  # an eval_fn that reads the RNG, as a sampling-based evaluation would
        return {"draw": float(torch.rand(1))}

    straight = pretraining.pretrain(mcfg, replace(cfg, output_dir=str(tmp_path / "a")), profile=CPU_FP32,
                                    resume=False, eval_fn=draws)
    split = replace(cfg, output_dir=str(tmp_path / "b"))
    stopped = pretraining.pretrain(mcfg, split, profile=CPU_FP32, resume=False, stop_after=5, eval_fn=draws)
    torch.manual_seed(12345)  # the resuming process's RNG differs: only the checkpoint's state may count
    resumed = pretraining.pretrain(mcfg, split, profile=CPU_FP32, eval_fn=draws)
    assert stopped.step == 5 and resumed.step == 12 and len(resumed.lrs) == 7, (stopped.step, resumed.step)
    assert resumed.losses == straight.losses, f"train: resumed {resumed.losses[5:]} vs {straight.losses[5:]}"
    assert resumed.val == straight.val, f"validation: resumed {resumed.val} vs uninterrupted {straight.val}"
    assert resumed.evals == straight.evals, f"evals: resumed {resumed.evals} vs uninterrupted {straight.evals}"
    assert [s for s, _ in resumed.val] == [3, 6, 9, 12], resumed.val


def test_killed_cli_run_resumes_from_its_last_checkpoint(shards, tmp_path):
    """A SIGKILL with no cleanup: the child is killed only once its checkpoint at step 4 is on disk (it then
    blocks on a pipe nobody writes), so the kill point is deterministic; the resumed log equals a straight run's."""
    args = [*MODEL, *RUN, "--data-dir", str(shards), "--max-steps", "8", "--save-steps", "4"]
    ref_log = tmp_path / "ref.jsonl"
    assert run_cli([*args, "--output-dir", str(tmp_path / "ref"), "--log-file", str(ref_log)]).wait(120) == 0
    log, out = tmp_path / "killed.jsonl", tmp_path / "run"
    hold = ("import sys, coursekit.checkpoints as c, coursekit.pretrain as p; save = c.save_checkpoint\n"
            "def hold(*a, **k):\n    path = save(*a, **k)\n    print('saved', a[4], flush=True)\n"
            "    if a[4] == 4: sys.stdin.read()\n    return path\n"
            "import coursekit.pretraining as t; t.save_checkpoint = hold; p.main(sys.argv[1:])")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", hold, *args, "--output-dir", str(out), "--log-file", str(log)],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:  # blocks until the child prints; ends if it exits
        seen.append(line.strip())
        if seen[-1] == "saved 4":
            break
    assert seen and seen[-1] == "saved 4", f"the child never saved step 4; its output: {seen}"
    proc.send_signal(signal.SIGKILL)  # for real: no cleanup, no final checkpoint
    proc.wait()
    proc.stdout.close()
    assert checkpoints.load_checkpoint(out / checkpoints.CKPT_NAME)["step"] == 4
    assert run_cli([*args, "--output-dir", str(out), "--log-file", str(log)]).wait(120) == 0
    assert logged_losses(log) == logged_losses(ref_log)  # identical floats, every step


def test_ddp_two_gloo_processes_match_one_process_with_double_accumulation(shards, tmp_path):
    common = [*MODEL, *RUN, "--data-dir", str(shards), "--max-steps", "6", "--no-resume"]
    single = tmp_path / "single.jsonl"
    assert run_cli([*common, "--gradient-accumulation-steps", "2", "--output-dir", str(tmp_path / "a"),
                    "--log-file", str(single)]).wait(120) == 0
    ddp = tmp_path / "ddp.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # coursekit.pretrain's main, then each rank says whether it left its process group behind
    script = tmp_path / "ddp_main.py"
    script.write_text("import sys\nimport torch.distributed as dist\nfrom coursekit import pretrain\n"
                      "pretrain.main(sys.argv[1:])\nprint('process group left:', dist.is_initialized(), flush=True)\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), *common, "--gradient-accumulation-steps", "1",
           "--output-dir", str(tmp_path / "b"), "--log-file", str(ddp)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("process group left: False") == 2, res.stdout[-2000:]  # destroyed on both ranks
    a, b = [l for _, l in logged_losses(single)], [l for _, l in logged_losses(ddp)]
    assert len(a) == len(b) == 6
    np.testing.assert_allclose(a, b, rtol=1e-5)
    sa = torch.load(tmp_path / "a" / checkpoints.CKPT_NAME, weights_only=True)["model"]
    sb = torch.load(tmp_path / "b" / checkpoints.CKPT_NAME, weights_only=True)["model"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=1e-5)
