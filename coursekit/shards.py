"""Token shards for pretraining: documents become uint16 ``.npy`` files, read back in (B, T) batches.

A corpus is tokenized once into shards ``train_000000.npy``, ``val_000000.npy``, ...
(2 bytes a token, so any vocabulary under 65,536 fits). The loader reads them
through memory maps, so a 10B-token corpus never has to fit in RAM, and rank r
of W processes reads slice r of every global batch::

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> [p.name for p in write_shards(range(100), d, "train")]
    ['train_000000.npy']
    >>> x, y = ShardLoader(d, "train", batch_size=2, seq_len=8).next_batch()
    >>> tuple(x.shape), x[0, :4].tolist(), y[0, :4].tolist()   # y: x shifted by one token
    ((2, 8), [0, 1, 2, 3], [1, 2, 3, 4])
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

SHARD_TOKENS = 100_000_000  # 200 MB of uint16 per shard file, as in nanoGPT's FineWeb script


class ShardWriter:
    """Appends token ids to uint16 shards ``<split>_000000.npy``, ``<split>_000001.npy``, ...

    Only one shard's buffer is held in memory, so a 10B-token corpus can stream through::

        >>> import tempfile
        >>> w = ShardWriter(tempfile.mkdtemp(), "train", shard_tokens=4)
        >>> w.add([1, 2, 3]); w.add([4, 5, 6, 7, 8, 9])
        >>> [p.name for p in w.close()], w.total
        (['train_000000.npy', 'train_000001.npy', 'train_000002.npy'], 9)
    """

    def __init__(self, out_dir: str | Path, split: str, shard_tokens: int = SHARD_TOKENS) -> None:
        self.out, self.split = Path(out_dir), split
        self.out.mkdir(parents=True, exist_ok=True)
        self.buffer = np.empty(shard_tokens, dtype=np.uint16)
        self.fill, self.total, self.paths = 0, 0, []

    def add(self, ids: Sequence[int] | np.ndarray) -> None:
        arr = np.asarray(ids)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"Token ids must be integers; got an array of {arr.dtype}. Pass the tokenizer's ids "
                             "(e.g. a list of int), not floats.")
        if arr.size and (arr.min() < 0 or arr.max() >= 2**16):
            raise ValueError(f"Token ids must be in [0, 65535] to fit uint16; got [{arr.min()}, {arr.max()}].")
        while arr.size:
            take = min(arr.size, len(self.buffer) - self.fill)
            self.buffer[self.fill:self.fill + take] = arr[:take]
            self.fill, self.total, arr = self.fill + take, self.total + take, arr[take:]
            if self.fill == len(self.buffer):
                self._flush()

    def _flush(self) -> None:
        path = self.out / f"{self.split}_{len(self.paths):06d}.npy"
        np.save(path, self.buffer[: self.fill])
        self.paths.append(path)
        self.fill = 0

    def close(self) -> list[Path]:
        """Write the last, partial shard; returns every shard's path."""
        if self.fill:
            self._flush()
        return self.paths


def write_shards(tokens: Sequence[int] | np.ndarray, out_dir: str | Path, split: str,
                 shard_tokens: int = SHARD_TOKENS) -> list[Path]:
    """Write token ids as uint16 ``<split>_000000.npy`` shards. Ids must be < 65,536."""
    writer = ShardWriter(out_dir, split, shard_tokens)
    writer.add(tokens)
    return writer.close()


def prepare_shards(docs: Iterable[str], encode: Any, eot: int, out_dir: str | Path, val_every: int = 10,
                   shard_tokens: int = SHARD_TOKENS, workers: int = 1, progress: bool = False) -> dict[str, int]:
    """Tokenize ``docs`` (a list or a stream) into train/val shards; every ``val_every``-th document is val.

    Each document is followed by ``eot``. Nothing but one shard per split is held
    in memory, so a streamed 10B-token corpus works; ``workers`` > 1 tokenizes in
    a process pool (``encode`` must then be picklable, as tiktoken's is).
    Returns the token count per split and the number of documents.
    """
    if val_every < 2:
        raise ValueError(f"val_every must be >= 2 (every n-th document goes to val); got {val_every}.")
    writers = {name: ShardWriter(out_dir, name, shard_tokens) for name in ("train", "val")}
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    encoded = pool.imap(encode, docs, chunksize=16) if pool else map(encode, docs)
    n = 0
    try:
        for n, ids in enumerate(tqdm(encoded, desc="tokenizing", unit=" docs", disable=not progress), start=1):
            writers["val" if n % val_every == 0 else "train"].add([*ids, eot])
    finally:
        if pool:
            pool.terminate()
    if n == 0:
        raise ValueError("No documents to tokenize.")
    counts = {name: w.total for name, w in writers.items()}
    for w in writers.values():
        w.close()
    return {**counts, "documents": n}


def _open_shard(path: Path) -> np.ndarray:
    """A shard's memory map; anything but a 1-D uint16 array is an error naming the file and what it holds."""
    tokens = np.load(path, mmap_mode="r")
    if tokens.dtype != np.uint16 or tokens.ndim != 1:
        raise ValueError(f"{path} holds a {tokens.ndim}-D {tokens.dtype} array; a shard is a 1-D uint16 array of "
                         "token ids. Rewrite it with write_shards() or prepare_shards().")
    return tokens


class ShardLoader:
    """Reads (B, T) batches from uint16 shards; rank r of W takes slice r of each W·B·T block.

    ``state_dict()`` is the read position (shard and offset), so a checkpoint resumes the data exactly.
    """

    def __init__(self, data_dir: str | Path, split: str, batch_size: int, seq_len: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.paths = sorted(Path(data_dir).glob(f"{split}_*.npy"))
        if not self.paths:
            raise FileNotFoundError(f"No {split}_*.npy shards in {data_dir}. Write them with prepare_shards() (documents) or write_shards() (token ids).")
        self.B, self.T, self.rank, self.world = batch_size, seq_len, rank, world_size
        need = batch_size * seq_len * world_size + 1
        sizes = [len(_open_shard(p)) for p in self.paths]
        if max(sizes) < need:
            raise ValueError(f"The {split} shards are too short for one batch: the largest has {max(sizes):,} "
                             f"tokens, one batch needs {need:,} (batch {batch_size} × seq_len {seq_len} × "
                             f"{world_size} processes + 1). Use a smaller batch/seq_len or more data.")
        self.shard, self.pos = 0, 0
        self._tokens = np.load(self.paths[0], mmap_mode="r")
        self._max_ids: list[int] | None = None

    def check_vocab(self, vocab_size: int) -> None:
        """Raise if a shard holds a token id ≥ ``vocab_size`` (the embedding's rows), naming the shard.

        Each shard's largest id is read once (one pass over its memory map), before any training.
        """
        if self._max_ids is None:
            self._max_ids = [int(np.load(p, mmap_mode="r").max(initial=0)) for p in self.paths]
        for path, top in zip(self.paths, self._max_ids):
            if top >= vocab_size:
                raise ValueError(f"{path} holds token id {top}, but the model's vocab_size is {vocab_size}: "
                                 f"set vocab_size to at least {top + 1} (the tokenizer's vocabulary), or rewrite "
                                 "the shards with the model's tokenizer.")

    def state_dict(self) -> dict[str, int]:
        return {"shard": self.shard, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.shard, self.pos = int(state["shard"]), int(state["pos"])
        self._tokens = np.load(self.paths[self.shard], mmap_mode="r")

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (x, y) pair, each (B, T); y is x shifted one token to the left."""
        block = self.B * self.T
        while self.pos + block * self.world + 1 > len(self._tokens):  # next shard, wrapping round
            self.shard = (self.shard + 1) % len(self.paths)
            self.pos = 0
            self._tokens = np.load(self.paths[self.shard], mmap_mode="r")
        start = self.pos + self.rank * block
        buf = torch.from_numpy(self._tokens[start:start + block + 1].astype(np.int64))  # (B·T + 1,)
        self.pos += block * self.world
        return buf[:-1].view(self.B, self.T), buf[1:].view(self.B, self.T)  # x, y: (B, T)
