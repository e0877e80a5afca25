import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from coursekit import train as T
from coursekit.gpt2 import GPT2, GPT2Config

MODEL = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--vocab-size", "64"]
RUN = ["--batch-size", "4", "--seq-len", "16", "--lr", "3e-3", "--warmup-steps", "3", "--progress", "false"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    tokens = np.tile(rng.integers(0, 64, 97), 200)  # a repeating pattern: learnable, so losses move
    T.write_shards(tokens[:15000], d, "train", shard_tokens=6000)
    T.write_shards(tokens[15000:], d, "val")
    return d


def run_cli(args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "coursekit.train", *args], env=env, **kw)


def test_lr_schedule_warms_up_then_decays_to_ten_percent():
    cfg = T.TrainConfig(lr=1.0, warmup_steps=10, max_steps=110)
    lrs = [T.lr_at(s, cfg) for s in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[110] == pytest.approx(0.1)


def test_weight_decay_only_on_matrices():
    model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=20))
    decay, no_decay = T.make_optimizer(model, T.TrainConfig(), "cpu").param_groups
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == model.num_params()


def test_ranks_read_disjoint_slices_that_cover_the_single_process_batches(shards):
    one = T.ShardLoader(shards, "train", 2, 16)
    ranks = [T.ShardLoader(shards, "train", 2, 16, rank=r, world_size=2) for r in range(2)]
    for _ in range(5):
        singles = torch.cat([one.next_batch()[0], one.next_batch()[0]])
        assert torch.equal(torch.cat([r.next_batch()[0] for r in ranks]), singles)


def test_loader_targets_are_inputs_shifted_and_state_resumes(shards):
    loader = T.ShardLoader(shards, "train", 3, 16)
    x, y = loader.next_batch()
    assert x.shape == (3, 16) and torch.equal(x[0, 1:], y[0, :-1])
    for _ in range(200):  # crosses shard boundaries
        loader.next_batch()
    state = loader.state_dict()
    again = T.ShardLoader(shards, "train", 3, 16)
    again.load_state_dict(state)
    assert torch.equal(loader.next_batch()[0], again.next_batch()[0])


def test_corpus_too_short_gives_the_sizes(tmp_path):
    T.write_shards(np.arange(50), tmp_path, "train")
    with pytest.raises(ValueError, match=r"largest has 50 tokens, one batch needs 129"):
        T.ShardLoader(tmp_path, "train", 8, 16)


DOCS = [f"document {i}: " + "word " * (i % 7) for i in range(25)]


def _read(d, split):
    return np.concatenate([np.load(p) for p in sorted(d.glob(f"{split}_*.npy"))]).tolist()


def test_prepare_shards_every_tenth_document_is_val(tmp_path):
    counts = T.prepare_shards(DOCS, str.encode, 0, tmp_path, shard_tokens=100)
    expect = {"train": [], "val": []}
    for i, doc in enumerate(DOCS, start=1):
        expect["val" if i % 10 == 0 else "train"] += [*doc.encode(), 0]
    assert _read(tmp_path, "train") == expect["train"] and _read(tmp_path, "val") == expect["val"]
    assert counts == {"train": len(expect["train"]), "val": len(expect["val"]), "documents": 25}
    assert len(list(tmp_path.glob("train_*.npy"))) == -(-counts["train"] // 100)  # 100-token shards, last partial


def test_prepare_shards_streams_and_a_pool_gives_the_same_shards(tmp_path):
    T.prepare_shards(iter(DOCS), str.encode, 0, tmp_path / "one")  # a generator: no len(), read once
    T.prepare_shards(iter(DOCS), str.encode, 0, tmp_path / "two", workers=2)
    for split in ("train", "val"):
        assert _read(tmp_path / "one", split) == _read(tmp_path / "two", split)


def test_prepare_shards_rejects_an_empty_corpus(tmp_path):
    with pytest.raises(ValueError, match="No documents"):
        T.prepare_shards([], str.encode, 0, tmp_path)


def test_token_ids_must_fit_uint16(tmp_path):
    with pytest.raises(ValueError, match="uint16"):
        T.write_shards([1, 70000], tmp_path, "train")


def test_training_learns_and_checkpoint_is_clean(shards, tmp_path):
    mcfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=64)
    cfg = T.TrainConfig(data_dir=str(shards), out_dir=str(tmp_path), batch_size=4, seq_len=16, max_steps=30,
                        lr=3e-3, warmup_steps=3, eval_every=10, progress=False)
    seen = []
    out = T.train(mcfg, cfg, resume=False, eval_fn=lambda m: seen.append(m.training) or {"n": len(seen)})
    assert np.mean(out["losses"][-5:]) < np.mean(out["losses"][:5]) - 0.5
    assert [s for s, _ in out["val"]] == [10, 20, 30]
    assert out["evals"] == [(10, {"n": 1}), (20, {"n": 2}), (30, {"n": 3})] and seen == [False] * 3
    ckpt = T.load_checkpoint(tmp_path / T.CKPT_NAME, mcfg)  # weights_only=True inside
    assert ckpt["step"] == 30 and not any(k.startswith("_orig_mod.") for k in ckpt["model"])
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match=r"n_layer: checkpoint 2 vs now 3"):
        T.load_checkpoint(tmp_path / T.CKPT_NAME, GPT2Config(n_layer=3, n_head=2, n_embd=32, block_size=32,
                                                              vocab_size=64))


def test_nan_loss_is_reported_not_trained_through():
    with pytest.raises(FloatingPointError, match="step 7"):
        T.check_finite(float("nan"), 7, None)
    scaler = torch.amp.GradScaler("cpu", init_scale=1e-4)
    with pytest.raises(FloatingPointError, match="loss scale collapsed"):
        T.check_finite(1.0, 3, scaler)


def test_compile_on_cpu_falls_back_in_one_line(capsys):
    model = torch.nn.Linear(2, 2)
    assert T.maybe_compile(model, True, "cpu") is model
    assert capsys.readouterr().out.count("\n") == 1


def test_killed_run_resumes_bit_for_bit(shards, tmp_path):
    args = [*MODEL, *RUN, "--data-dir", str(shards), "--max-steps", "16", "--ckpt-every", "2"]
    ref_log = tmp_path / "ref.jsonl"
    assert run_cli([*args, "--out-dir", str(tmp_path / "ref"), "--log-file", str(ref_log)]).wait(120) == 0

    log = tmp_path / "killed.jsonl"
    proc = run_cli([*args, "--out-dir", str(tmp_path / "run"), "--log-file", str(log)])
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 7):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # for real: no cleanup, no final checkpoint
    proc.wait()
    killed_at = len(log.read_text().splitlines())
    assert 7 <= killed_at < 16, "the run finished before it could be killed"
    assert run_cli([*args, "--out-dir", str(tmp_path / "run"), "--log-file", str(log)]).wait(120) == 0

    ref, resumed = list(T.iter_losses(ref_log)), list(T.iter_losses(log))
    assert [s for s, _ in resumed] == list(range(1, 17))
    assert resumed == ref  # identical floats, every step


def test_ddp_two_gloo_processes_match_one_process_with_double_accumulation(shards, tmp_path):
    common = [*MODEL, *RUN, "--data-dir", str(shards), "--max-steps", "6", "--no-resume"]
    single = tmp_path / "single.jsonl"
    assert run_cli([*common, "--grad-accum", "2", "--out-dir", str(tmp_path / "a"), "--log-file", str(single)]).wait(120) == 0
    ddp = tmp_path / "ddp.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "coursekit.train", *common, "--grad-accum", "1", "--out-dir", str(tmp_path / "b"), "--log-file", str(ddp)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    a, b = [l for _, l in T.iter_losses(single)], [l for _, l in T.iter_losses(ddp)]
    assert len(a) == len(b) == 6
    np.testing.assert_allclose(a, b, rtol=1e-5)
    sa = torch.load(tmp_path / "a" / T.CKPT_NAME, weights_only=True)["model"]
    sb = torch.load(tmp_path / "b" / T.CKPT_NAME, weights_only=True)["model"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=1e-5)
