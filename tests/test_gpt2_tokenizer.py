"""``assets.gpt2_encoding()``: GPT-2's tokenizer offline, identical to tiktoken's and to Hugging Face's.

Nothing here touches the network: the reference encodings are built from the
files carried in ``coursekit/gpt2_tokenizer/``.
"""

import hashlib
import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit import assets, hub

tiktoken = pytest.importorskip("tiktoken")

TEXTS = [
    "Hello world",
    " leading space, and  two spaces",
    "The quick brown fox jumps over the lazy dog.",
    "I don't know, she'll say they're fine; we've I'm he'd it's",
    "DON'T SHOUT: 'quoted' words'",
    "def f(x):\n    return x + 1\n\n\n\tif  x  >=  2 :\n        pass   \n",
    "trailing whitespace   ",
    "1234567890 3.14159 1,000,000 0x1F 2024-06-01",
    "café naïve résumé Ångström",
    "日本語のテキスト 中文 한국어",
    "emoji 🤗🚀👩‍👩‍👧 and flags 🇫🇷",
    "line one\nline two\r\nline three\n\n",
    "\u00a0non-breaking\u2003em space\u200bzero width",
    "",
    " ",
    "\n",
]


@pytest.fixture(scope="module")
def enc():
    return assets._gpt2_from_files()


@pytest.fixture(scope="module")
def hf():
    from transformers import GPT2TokenizerFast

    # from_pretrained(folder): transformers 5 ignores the vocab_file=/merges_file= keywords (an empty tokenizer)
    tok = GPT2TokenizerFast.from_pretrained(assets.GPT2_FILES)
    assert len(tok) == 50257
    return tok


def test_files_are_the_ones_tiktoken_downloads():
    # the sha256 hashes tiktoken_ext/openai_public.py checks GPT-2's encoder.json and vocab.bpe against
    vocab = (assets.GPT2_FILES / "vocab.json").read_bytes()
    bpe = b"#version: 0.2\n" + (assets.GPT2_FILES / "merges.txt").read_bytes()
    assert hashlib.sha256(vocab).hexdigest() == "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
    assert hashlib.sha256(bpe).hexdigest() == "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
    assert (assets.GPT2_FILES / "LICENSE").read_text(encoding="utf-8").startswith("Modified MIT License")


def test_same_encoding_as_tiktoken_builds(enc, monkeypatch):
    # run tiktoken's own gpt2() constructor, its hash checks and its ranks check included, serving it our files
    import tiktoken.load
    import tiktoken_ext.openai_public

    served = {"vocab.bpe": b"#version: 0.2\n" + (assets.GPT2_FILES / "merges.txt").read_bytes(),
              "encoder.json": (assets.GPT2_FILES / "vocab.json").read_bytes()}
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no cache: read_file is called, and nothing is written
    monkeypatch.setattr(tiktoken.load, "read_file", lambda url: served[url.rsplit("/", 1)[1]])
    spec = tiktoken_ext.openai_public.gpt2()
    assert spec["pat_str"] == enc._pat_str == assets.GPT2_PAT_STR
    assert spec["mergeable_ranks"] == enc._mergeable_ranks
    assert spec["special_tokens"] == enc._special_tokens == {"<|endoftext|>": 50256}
    assert (enc.name, enc.n_vocab, enc.eot_token, enc.max_token_value) == ("gpt2", 50257, 50256, 50256)


@pytest.mark.parametrize("text", TEXTS)
def test_matches_hugging_face_gpt2(enc, hf, text):
    ids = enc.encode_ordinary(text)
    assert ids == hf(text, add_special_tokens=False)["input_ids"]
    assert enc.decode(ids) == text == hf.decode(ids)


@pytest.fixture(scope="module")
def ours(enc):
    """coursekit's from-scratch BPETokenizer running GPT-2's merges (recovered from tiktoken's ranks)."""
    from coursekit.bpe import from_mergeable_ranks

    return from_mergeable_ranks(enc._mergeable_ranks, enc._pat_str, enc._special_tokens)


def _ours_as_gpt2(ours, enc, text):
    from coursekit.bpe import as_ranks

    return as_ranks(ours, ours.encode(text, allowed_special="all"), enc._mergeable_ranks)


def test_our_bpe_with_gpt2_ranks_gives_tiktokens_ids(enc, ours):
    # merging the lowest-ranked pair first is what makes these equal: leftmost-first is lossless but differs
    text = "\n".join(TEXTS) + "<|endoftext|>" + (assets.GPT2_FILES / "README.md").read_text(encoding="utf-8")
    got, want = _ours_as_gpt2(ours, enc, text), enc.encode(text, allowed_special="all")
    first = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert got == want, f"{len(got)} vs {len(want)} ids, first difference at position {first}"
    assert ours.decode(ours.encode(text, allowed_special="all")) == text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(" \t\n'sdmtlvre09aZ"), max_size=60))
def test_our_bpe_with_gpt2_ranks_on_random_text(enc, ours, text):
    assert _ours_as_gpt2(ours, enc, text) == enc.encode_ordinary(text), repr(text)


def test_endoftext(enc, hf):
    text = "one<|endoftext|>two"
    assert enc.encode(text, allowed_special={"<|endoftext|>"}) == hf(text)["input_ids"] == [505, 50256, 11545]
    with pytest.raises(ValueError, match="disallowed special token"):
        enc.encode(text)
    assert 50256 not in enc.encode_ordinary(text)  # as plain text it is just characters
    assert enc.decode([50256]) == "<|endoftext|>" and hf.eos_token_id == 50256


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(" \t\n'sdmtlvre09aZ"), max_size=60))
def test_matches_hugging_face_on_random_text(enc, hf, text):
    ids = enc.encode_ordinary(text)
    assert ids == hf(text, add_special_tokens=False)["input_ids"]
    assert enc.decode(ids) == text


def test_inconsistent_files_are_refused(tmp_path):
    merges = (assets.GPT2_FILES / "merges.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "vocab.json").write_bytes((assets.GPT2_FILES / "vocab.json").read_bytes())
    (tmp_path / "merges.txt").write_text("\n".join([merges[1], merges[0], *merges[2:]]), encoding="utf-8")
    with pytest.raises(assets.AssetError, match="disagree"):
        assets._gpt2_from_files(tmp_path)


def _no_network(*args, **kwargs):
    raise AssertionError("gpt2_encoding() touched the network")


def test_offline_env_builds_locally_without_network(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty tiktoken cache
    for name in ("create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    start = time.perf_counter()
    enc = assets.gpt2_encoding.__wrapped__()  # uncached: this call decides and builds
    assert time.perf_counter() - start < 30  # about 0.5 s; generous for a shared 2-core machine
    assert capsys.readouterr().out.strip() == "GPT-2 tokenizer: built from coursekit's copy of GPT-2's files (offline)"
    assert enc.encode("Hello world") == [15496, 995] and enc.n_vocab == 50257


@pytest.fixture
def decide(monkeypatch, tmp_path):
    """Run gpt2_encoding's choice alone: both builders replaced by labels, no offline variables, empty cache."""
    for var in hub.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(assets, "_gpt2_from_files", lambda: "local")
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: f"tiktoken:{name}")
    return lambda: assets.gpt2_encoding.__wrapped__()


def test_unreachable_server_falls_back_after_one_quick_probe(decide, monkeypatch):
    import requests

    probes = []

    def head(url, timeout):
        probes.append(timeout)
        raise requests.ConnectionError("no network")

    monkeypatch.setattr(requests, "head", head)
    assert decide() == "local" and probes == [3.0]


def test_reachable_server_or_tiktoken_cache_uses_tiktoken(decide, monkeypatch, tmp_path):
    import requests

    monkeypatch.setattr(requests, "head", lambda url, timeout: type("R", (), {"ok": True})())
    assert decide() == "tiktoken:gpt2"
    # a failed download (here: get_encoding raising) still ends in the local build
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: _no_network())
    assert decide() == "local"
    # with both files in tiktoken's cache it needs no network, even when marked offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(requests, "head", _no_network)
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: f"tiktoken:{name}")
    for url in assets._GPT2_URLS:
        (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"")
    assert decide() == "tiktoken:gpt2"


def test_cached_and_picklable(monkeypatch):
    import pickle

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # in case this call is the first: no probe
    enc = assets.gpt2_encoding()
    assert assets.gpt2_encoding() is enc
    # train.prepare_shards sends encode_ordinary to worker processes
    assert pickle.loads(pickle.dumps(enc.encode_ordinary))("Hello world") == [15496, 995]
