"""A damaged checkpoint names its file and both ways on; the previous checkpoint survives a new one."""

import numpy as np
import pytest
import torch

from coursekit import checkpoints, pretraining
from coursekit.gpt2 import GPT2Config
from coursekit.pretraining import PretrainConfig
from coursekit.runtime import Precision, Profile
from coursekit.shards import write_shards

CPU_FP32 = Profile("smoke", "a test", "cpu", Precision("fp32", "a test"))
MCFG = GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=64)


@pytest.fixture
def run_dir(tmp_path):
    """A 2-step run checkpointed every step: ckpt.pt holds step 2, ckpt.prev.pt step 1."""
    write_shards(np.tile(np.arange(64), 40), tmp_path / "data", "train")
    cfg = PretrainConfig(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "run"), batch_size=2,
                         max_length=16, max_steps=2, save_steps=1, progress=False)
    pretraining.pretrain(MCFG, cfg, profile=CPU_FP32, resume=False)
    return tmp_path / "run", cfg


def test_the_previous_checkpoint_is_kept(run_dir):
    out, _ = run_dir
    steps = {name: checkpoints.load_checkpoint(out / name, MCFG)["step"]
             for name in (checkpoints.CKPT_NAME, checkpoints.PREV_NAME)}
    assert steps == {checkpoints.CKPT_NAME: 2, checkpoints.PREV_NAME: 1}, steps
    assert not list(out.glob("*.tmp")), sorted(out.iterdir())


@pytest.mark.parametrize(("damage", "reason"), [("truncate", "unreadable ("), ("empty", "the file is empty")])
def test_a_damaged_checkpoint_names_the_file_and_how_to_go_on(run_dir, damage, reason):
    out, cfg = run_dir
    path = out / checkpoints.CKPT_NAME
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"")
    with pytest.raises(checkpoints.CheckpointError) as err:
        pretraining.pretrain(MCFG, cfg, profile=CPU_FP32)
    text = str(err.value)
    assert str(path) in text and reason in text and "\n" not in text, text
    assert "resume=False (--no-resume)" in text and f"mv {out / checkpoints.PREV_NAME} {path}" in text, text


def test_a_crash_while_writing_leaves_the_last_checkpoint_whole(run_dir, monkeypatch):
    out, _ = run_dir
    path = out / checkpoints.CKPT_NAME

    def dies_mid_write(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", dies_mid_write)
    model = pretraining.GPT2(MCFG)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(path, model, pretraining.make_optimizer(model, PretrainConfig(), "cpu"), None, 3,
                                    pretraining.ShardLoader(out.parent / "data", "train", 2, 16), MCFG,
                                    PretrainConfig(), [1.0, 2.0, 3.0])
    monkeypatch.undo()
    assert checkpoints.load_checkpoint(path, MCFG)["step"] == 2, "the complete checkpoint was replaced"
    assert checkpoints.load_checkpoint(out / checkpoints.PREV_NAME, MCFG)["step"] == 1
