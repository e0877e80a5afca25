import numpy as np
import pytest
import torch

from coursekit import shards as S


@pytest.fixture(scope="module")
def train_shards(tmp_path_factory):
    """Three train shards of 6,000, 6,000 and 3,000 tokens: the loader has boundaries to cross."""
    d = tmp_path_factory.mktemp("shards")
    pattern = np.random.default_rng(0).integers(0, 64, 97)
    S.write_shards(np.tile(pattern, 200)[:15000], d, "train", shard_tokens=6000)
    return d


def test_ranks_read_disjoint_slices_that_cover_the_single_process_batches(train_shards):
    one = S.ShardLoader(train_shards, "train", 2, 16)
    ranks = [S.ShardLoader(train_shards, "train", 2, 16, rank=r, world_size=2) for r in range(2)]
    for _ in range(5):
        singles = torch.cat([one.next_batch()[0], one.next_batch()[0]])
        assert torch.equal(torch.cat([r.next_batch()[0] for r in ranks]), singles)


def test_loader_targets_are_inputs_shifted_and_state_resumes(train_shards):
    loader = S.ShardLoader(train_shards, "train", 3, 16)
    x, y = loader.next_batch()
    assert x.shape == (3, 16) and torch.equal(x[0, 1:], y[0, :-1])
    for _ in range(200):  # crosses shard boundaries
        loader.next_batch()
    state = loader.state_dict()
    again = S.ShardLoader(train_shards, "train", 3, 16)
    again.load_state_dict(state)
    assert torch.equal(loader.next_batch()[0], again.next_batch()[0])


def test_corpus_too_short_gives_the_sizes(tmp_path):
    S.write_shards(np.arange(50), tmp_path, "train")
    with pytest.raises(ValueError, match=r"largest has 50 tokens, one batch needs 129"):
        S.ShardLoader(tmp_path, "train", 8, 16)


DOCS = [f"document {i}: " + "word " * (i % 7) for i in range(25)]


def _read(d, split):
    return np.concatenate([np.load(p) for p in sorted(d.glob(f"{split}_*.npy"))]).tolist()


def test_prepare_shards_every_tenth_document_is_val(tmp_path):
    counts = S.prepare_shards(DOCS, str.encode, 0, tmp_path, shard_tokens=100)
    expect = {"train": [], "val": []}
    for i, doc in enumerate(DOCS, start=1):
        expect["val" if i % 10 == 0 else "train"] += [*doc.encode(), 0]
    assert _read(tmp_path, "train") == expect["train"] and _read(tmp_path, "val") == expect["val"]
    assert counts == {"train": len(expect["train"]), "val": len(expect["val"]), "documents": 25}
    assert len(list(tmp_path.glob("train_*.npy"))) == -(-counts["train"] // 100)  # 100-token shards, last partial


def test_prepare_shards_streams_and_a_pool_gives_the_same_shards(tmp_path):
    S.prepare_shards(iter(DOCS), str.encode, 0, tmp_path / "one")  # a generator: no len(), read once
    S.prepare_shards(iter(DOCS), str.encode, 0, tmp_path / "two", workers=2)
    for split in ("train", "val"):
        assert _read(tmp_path / "one", split) == _read(tmp_path / "two", split)


def test_prepare_shards_rejects_an_empty_corpus(tmp_path):
    with pytest.raises(ValueError, match="No documents"):
        S.prepare_shards([], str.encode, 0, tmp_path)


def test_token_ids_must_fit_uint16(tmp_path):
    with pytest.raises(ValueError, match="uint16"):
        S.write_shards([1, 70000], tmp_path, "train")


def test_a_shard_of_another_dtype_names_the_file_and_the_dtype(tmp_path):
    np.save(tmp_path / "train_000000.npy", np.arange(500, dtype=np.float32) + 0.5)  # fractions: not token ids
    with pytest.raises(ValueError, match=r"train_000000.npy holds a 1-D float32 array; a shard is a 1-D uint16"):
        S.ShardLoader(tmp_path, "train", 2, 16)


def test_the_writer_refuses_fractional_ids(tmp_path):
    with pytest.raises(ValueError, match=r"Token ids must be integers; got an array of float64"):
        S.write_shards([1.5, 2.0, 3.0], tmp_path, "train")
    assert not list(tmp_path.glob("*.npy")), sorted(tmp_path.iterdir())


def test_check_vocab_names_the_shard_and_the_largest_id(tmp_path):
    S.write_shards([1, 2, 3] * 40, tmp_path, "train", shard_tokens=100)
    S.write_shards([70], tmp_path / "x", "train")
    (tmp_path / "x" / "train_000000.npy").rename(tmp_path / "train_000002.npy")
    loader = S.ShardLoader(tmp_path, "train", 2, 16)
    loader.check_vocab(71)  # ids 1..70 fit 71 rows
    with pytest.raises(ValueError, match=r"train_000002.npy holds token id 70, but the model's vocab_size is 64"):
        loader.check_vocab(64)
