"""A tokenizer's file: the pattern, the merges in order and the special tokens, as checked JSON.

``write_tokenizer_file`` writes what ``BPETokenizer.save`` needs; ``read_tokenizer_file`` reads it back
and checks every field first, because a corrupted file that loads still decodes to the wrong text.
Each problem is one ``ValueError`` line that names the file, the field and the fix::

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tok.json"
    >>> _ = write_tokenizer_file(path, "[a-z]+", [(104, 105)], {"<|end|>": 257})
    >>> read_tokenizer_file(path)
    ('[a-z]+', [(104, 105)], {'<|end|>': 257})
    >>> _ = path.write_text(path.read_text()[:40])   # a truncated copy
    >>> try:
    ...     read_tokenizer_file(path)
    ... except ValueError as err:
    ...     print(str(err).removeprefix(str(path)).split(" (")[0], "...", str(err).rsplit(": ", 1)[1])
     is not valid JSON ... save the tokenizer again with BPETokenizer.save.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import regex

from coursekit.bpe.basic import Pair

__all__ = ["FORMAT", "FORMAT_VERSION", "read_tokenizer_file", "write_tokenizer_file"]

FORMAT = "coursekit-bpe"
FORMAT_VERSION = 1
_RESAVE = "save the tokenizer again with BPETokenizer.save"
# every problem with a file's content is a ValueError (TypeError would say the caller passed a wrong type)


def write_tokenizer_file(path: str | Path, pattern: str, merges: Sequence[Pair],
                         special_tokens: Mapping[str, int]) -> Path:
    """Write ``pattern``, ``merges`` (merge ``k`` makes id ``256 + k``) and ``special_tokens`` as JSON."""
    path = Path(path)
    data = {"format": FORMAT, "version": FORMAT_VERSION, "pattern": pattern,
            "merges": [list(pair) for pair in merges], "special_tokens": dict(special_tokens)}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def read_tokenizer_file(path: str | Path) -> tuple[str, list[Pair], dict[str, int]]:
    """``(pattern, merges, special_tokens)`` of a file written by ``write_tokenizer_file``, every field checked."""
    data = _read_json(Path(path))
    name = str(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{name} is not a {FORMAT} file (format={found!r}): load only files written by "
                         "BPETokenizer.save.")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{name} is {FORMAT} version {data.get('version')!r}, but this coursekit reads version "
                         f"{FORMAT_VERSION}: {_RESAVE} of the same coursekit version that loads it.")
    missing = [key for key in ("pattern", "merges", "special_tokens") if key not in data]
    if missing:
        raise ValueError(f"{name} has no {missing} field(s) (truncated or edited?): {_RESAVE}.")
    merges = _checked_merges(name, data["merges"])
    return _checked_pattern(name, data["pattern"]), merges, _checked_specials(name, data["special_tokens"],
                                                                              256 + len(merges))


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such tokenizer file: check the path, or train and "
                                "BPETokenizer.save one there first.") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start} is {err.object[err.start:err.start + 1]!r}): "
                         f"it is not a tokenizer file, or it is corrupted: {_RESAVE}.") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (truncated or corrupted? {err.msg} at line {err.lineno} "
                         f"column {err.colno}): {_RESAVE}.") from None
    except _DuplicateKey as err:
        raise ValueError(f"{path} lists the key {err.args[0]!r} twice, so one of its values would be lost "
                         f"(a merged or edited file?): {_RESAVE}.") from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys: a special token listed twice would lose an id silently
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _checked_pattern(name: str, pattern: object) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{name}: 'pattern' must be a non-empty regex string, got {pattern!r}: {_RESAVE}.")
    try:
        regex.compile(pattern)
    except regex.error as err:
        raise ValueError(f"{name}: 'pattern' is not a valid regex ({err}): {_RESAVE}.") from None
    return pattern


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _checked_merges(name: str, merges: object) -> list[Pair]:
    if not isinstance(merges, list):
        raise ValueError(f"{name}: 'merges' must be a list of [left id, right id] pairs, got "  # noqa: TRY004
                         f"{type(merges).__name__}: {_RESAVE}.")
    out: list[Pair] = []
    seen: dict[Pair, int] = {}
    for rank, item in enumerate(merges):
        idx = 256 + rank
        if not (isinstance(item, list) and len(item) == 2 and all(_is_id(x) for x in item)):
            raise ValueError(f"{name}: merge {rank} must be a pair of two non-negative integer ids, got {item!r}: "
                             f"{_RESAVE}.")
        pair = (item[0], item[1])
        if max(pair) >= idx:
            raise ValueError(f"{name}: merge {rank} {list(pair)} makes id {idx} from an unknown id (only ids below "
                             f"{idx} exist at that point): the merges are out of order or corrupted: {_RESAVE}.")
        if pair in seen:
            raise ValueError(f"{name}: merge {rank} {list(pair)} repeats merge {seen[pair]}: a pair merges once, so "
                             f"the file is corrupted: {_RESAVE}.")
        seen[pair] = rank
        out.append(pair)
    return out


def _checked_specials(name: str, specials: object, first_free: int) -> dict[str, int]:
    if not isinstance(specials, dict):
        raise ValueError(f"{name}: 'special_tokens' must map token strings to ids, got "  # noqa: TRY004
                         f"{type(specials).__name__}: {_RESAVE}.")
    owner: dict[int, str] = {}
    for token, idx in specials.items():
        if not token or not _is_id(idx):
            raise ValueError(f"{name}: special token {token!r} -> {idx!r} must be a non-empty string with a "
                             f"non-negative integer id: {_RESAVE}.")
        if idx < first_free:
            kind = "a byte" if idx < 256 else f"merge {idx - 256}"
            raise ValueError(f"{name}: special token {token!r} has id {idx}, which is already {kind} (ids below "
                             f"{first_free} are bytes and merges), so decoding it would be wrong: {_RESAVE}.")
        if idx in owner:
            raise ValueError(f"{name}: special tokens {owner[idx]!r} and {token!r} share id {idx}: each needs its "
                             f"own id: {_RESAVE}.")
        owner[idx] = token
    return dict(sorted(specials.items(), key=lambda kv: kv[1]))
