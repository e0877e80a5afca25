"""API-drift gate: every keyword we pass to trl, peft and transformers still exists.

The course's code and notebooks are scanned for calls to the library entry
points below; each keyword is looked up in ``inspect.signature`` of the live
object. A rename upstream (e.g. ``tokenizer`` → ``processing_class``) fails here
before it fails in a student's notebook. ``X.from_pretrained`` is checked by the kind
of X (model, tokenizer, config) against what it really takes through ``**kwargs``
(the keywords its source pops, its documented ones, the config's fields), and a
keyword given to one of our own ``**kwargs`` wrappers (``load_causal_lm``) is checked
against the call the wrapper hands it to.
"""

import ast
import inspect
import json
import re

import peft
import transformers
import trl
from transformers import GenerationConfig

from coursekit import course
from coursekit.gpt2 import GPT2
from coursekit.standin.models import MODELS

CHECKED = {
    "LoraConfig": peft.LoraConfig,
    "get_peft_model": peft.get_peft_model,
    "prepare_model_for_kbit_training": peft.prepare_model_for_kbit_training,
    "SFTConfig": trl.SFTConfig,
    "SFTTrainer": trl.SFTTrainer,
    "BitsAndBytesConfig": transformers.BitsAndBytesConfig,
    "TrainingArguments": transformers.TrainingArguments,
    "Trainer": transformers.Trainer,
    "DataCollatorForLanguageModeling": transformers.DataCollatorForLanguageModeling,
    "apply_chat_template": transformers.PreTrainedTokenizerBase.apply_chat_template,
    "GgufConfig": transformers.GgufConfig,
}
# A name two libraries share: the source's own `from … import` decides which one is checked.
BY_LIBRARY = {("trl", "DataCollatorForLanguageModeling"): trl.trainer.sft_trainer.DataCollatorForLanguageModeling}
# Keywords a callable forwards on purpose through **kwargs (so no signature names them).
FORWARDED = {"apply_chat_template": {"enable_thinking"}}  # a Jinja template variable (Qwen3's switch)
GENERATE_OK = set(inspect.signature(transformers.GenerationMixin.generate).parameters) | set(
    GenerationConfig().to_dict()) | {"input_ids", "attention_mask"}
GENERATE_OK |= set(inspect.signature(GPT2.generate).parameters)  # our own GPT2 has a generate() too


def _unmagic(line):
    """IPython magics (%pip, !ls) are not Python: keep the line as a ``pass`` at its indentation."""
    stripped = line.lstrip()
    return line[: len(line) - len(stripped)] + "pass" if stripped.startswith(("%", "!")) else line


def sources():
    for path in sorted((course.ROOT / "coursekit").rglob("*.py")):  # subpackages (evals/, bpe/, standin/) too
        yield str(path.relative_to(course.ROOT)), path.read_text(encoding="utf-8")
    for path in course.notebook_paths():
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                src = "".join(cell["source"])
                src = "\n".join(_unmagic(line) for line in src.splitlines())
                yield f"{path.name}[cell {i}]", src


def _kwarg_names(func):
    """Keywords a transformers function reads out of its ``**kwargs`` by name (``kwargs.pop("gguf_file", None)``)."""
    return set(re.findall(r"""kwargs\.(?:pop|get)\(\s*["'](\w+)["']""", inspect.getsource(func)))


def _documented(func):
    """Parameters its docstring documents (``name (`type`...``), the ones it takes through ``**kwargs`` included."""
    return set(re.findall(r"^\s*(\w+) \(`", func.__doc__ or "", re.MULTILINE))


def _config_fields():
    """A model's ``from_pretrained`` hands unknown keywords to its config: every field of the course's configs."""
    fields = set(transformers.PretrainedConfig().to_dict())
    for model_type in sorted({spec.config.get("model_type") for spec in MODELS.values()} - {None}):
        fields |= set(transformers.CONFIG_MAPPING[model_type]().to_dict())
    return {f for f in fields if not f.startswith("_")}


def _from_pretrained_ok():
    """What ``X.from_pretrained(...)`` accepts, by the kind of X: its signature, what it pops out of ``**kwargs``,
    what it documents, and for a model or config the config's fields."""
    base = transformers.PreTrainedTokenizerBase
    model = {transformers.PreTrainedModel.from_pretrained, transformers.AutoModelForCausalLM.from_pretrained}
    tokenizer = {base.from_pretrained, base._from_pretrained, base.__init__, transformers.AutoTokenizer.from_pretrained}
    config = {transformers.PretrainedConfig.from_pretrained, transformers.PretrainedConfig.get_config_dict,
              transformers.AutoConfig.from_pretrained}

    def accepted(funcs):
        return set().union(*(set(inspect.signature(f).parameters) | _kwarg_names(f) | _documented(f) for f in funcs))

    return {"model": accepted(model) | _config_fields(),
            "tokenizer": accepted(tokenizer) | _documented_init(base) | set(base.SPECIAL_TOKENS_ATTRIBUTES),
            "config": accepted(config) | _config_fields(),
            "adapter": accepted({peft.PeftModel.from_pretrained})}


def _documented_init(base):
    from transformers import tokenization_utils_base

    return set(re.findall(r"^\s*(\w+) \(`", tokenization_utils_base.INIT_TOKENIZER_DOCSTRING, re.MULTILINE)) - {"base"}


FROM_PRETRAINED_OK = _from_pretrained_ok()


def _target(call):
    """The name a call is checked under: ``AutoTokenizer.from_pretrained`` → ``from_pretrained:tokenizer``."""
    func = call.func
    name = getattr(func, "attr", None) or getattr(func, "id", None)
    if name == "from_pretrained":
        owner = getattr(func.value, "id", "") or getattr(func.value, "attr", "")
        kinds = {"Tokenizer": "tokenizer", "Config": "config", "Peft": "adapter"}
        kind = next((k for part, k in kinds.items() if part in owner), "model")
        return f"from_pretrained:{kind}"
    return name


def forwarding_wrappers():
    """``{function: (its own parameters, the call its **kwargs go to)}`` for each coursekit function that takes
    ``**kwargs`` and hands them on, so that a keyword passed to the wrapper is checked against the real callee."""
    wrappers = {}
    for where, src in sources():
        if not where.endswith(".py"):
            continue
        for fn in ast.walk(ast.parse(src)):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or not fn.args.kwarg or fn.name.startswith("__"):
                continue
            own = {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}
            for call in ast.walk(fn):
                if isinstance(call, ast.Call) and any(k.arg is None and getattr(k.value, "id", None) == fn.args.kwarg.arg
                                                      for k in call.keywords):
                    wrappers[fn.name] = (own, _target(call))
    return wrappers


def allowed_keywords(target, wrappers, seen=()):
    """The keywords ``target`` accepts, or None where it is not a call this gate checks."""
    if target in CHECKED:
        return set(inspect.signature(CHECKED[target]).parameters) | FORWARDED.get(target, set())
    if target == "generate":
        return GENERATE_OK
    if target and target.startswith("from_pretrained:"):
        return FROM_PRETRAINED_OK[target.split(":")[1]]
    if target in wrappers and target not in seen:
        own, inner = wrappers[target]
        passed_on = allowed_keywords(inner, wrappers, (*seen, target))
        return None if passed_on is None else own | passed_on
    return None


def _imported_from(tree):
    """``{local name: top-level package}`` for the source's ``from package.x import name [as local]`` lines."""
    return {(a.asname or a.name): node.module.split(".")[0] for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module for a in node.names}


def calls():
    for where, src in sources():
        tree = ast.parse(src)
        origin = _imported_from(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _target(node)
                kws = [k.arg for k in node.keywords if k.arg]
                if name and kws:
                    yield where, (origin.get(name), name), kws


def drift_problems():
    """(calls checked, one line per keyword that the callee does not accept)."""
    problems, checked, wrappers = [], 0, forwarding_wrappers()
    for where, (library, name), kws in calls():
        if (library, name) in BY_LIBRARY:
            allowed = set(inspect.signature(BY_LIBRARY[library, name]).parameters)
        else:
            allowed = allowed_keywords(name, wrappers)
        if allowed is None:
            continue
        checked += 1
        problems += [f"{where}: {name}({kw}=...) is not accepted any more" for kw in kws if kw not in allowed]
    return checked, problems


def test_every_keyword_we_pass_exists():
    checked, problems = drift_problems()
    assert checked > 0, "the scan found no library calls: the gate would be vacuous"
    assert problems == [], problems


def test_the_gate_catches_a_renamed_keyword(monkeypatch):
    fake = "from trl import SFTTrainer\nSFTTrainer(model=m, tokenizer=t)\n"
    monkeypatch.setattr(__import__(__name__), "sources", lambda: iter([("fake.py", fake)]))
    found = [(n, kws) for _, n, kws in calls()]
    assert found == [(("trl", "SFTTrainer"), ["model", "tokenizer"])], found
    assert "tokenizer" not in inspect.signature(trl.SFTTrainer).parameters  # renamed to processing_class


def test_the_settings_we_hand_trl_are_sftconfig_keywords():
    """sft.trl_arguments builds SFTConfig's keywords as a dict, which the scan above cannot see: check them here."""
    from coursekit import sft
    from coursekit.runtime import get_profile

    passed = set(sft.trl_arguments(sft.SFTSettings(), get_profile("smoke", verbose=False)))
    assert passed - set(inspect.signature(trl.SFTConfig).parameters) == set()


def _plant(monkeypatch, fake):
    monkeypatch.setattr(__import__(__name__), "sources", lambda: iter([("fake.py", fake)]))
    return drift_problems()


def test_the_gate_catches_a_typo_passed_to_from_pretrained(monkeypatch):
    fake = ("tok = AutoTokenizer.from_pretrained(name, padding_sid='left')\n"
            "tok = AutoTokenizer.from_pretrained(name, padding_side='left', use_fast=True)\n"
            "model = AutoModelForCausalLM.from_pretrained(name, dtype='auto', gguf_file='m.gguf', tie_word_embeddings=False)\n"
            "model = AutoModelForCausalLM.from_pretrained(name, device_mapp='auto')\n"
            "model = PeftModel.from_pretrained(base, path, adapter_name='a', is_trainable=True, is_trainabel=True)\n")
    checked, problems = _plant(monkeypatch, fake)
    assert checked == 5, f"all five from_pretrained calls are checked: {checked}"
    assert problems == ["fake.py: from_pretrained:tokenizer(padding_sid=...) is not accepted any more",
                        "fake.py: from_pretrained:model(device_mapp=...) is not accepted any more",
                        "fake.py: from_pretrained:adapter(is_trainabel=...) is not accepted any more"], problems


def test_the_gate_follows_keywords_through_kwargs_wrappers(monkeypatch):
    fake = ("def load(name, profile=None, **kwargs):\n"
            "    return AutoModelForCausalLM.from_pretrained(name, **kwargs)\n"
            "def outer(name, **kw):\n"
            "    return load(name, **kw)\n"
            "def train(model, **kwargs):\n"
            "    return SFTConfig(**kwargs)\n"
            "load('m', profile=1, quantization_config=q)\n"
            "outer('m', profile=1, attn_implementation='sdpa', quantisation_config=q)\n"
            "train(m, learning_rate=1e-4, learnin_rate=1e-4)\n")
    checked, problems = _plant(monkeypatch, fake)
    assert checked == 3, f"the three wrapper calls are checked (the inner calls pass only **kwargs): {checked}"
    assert problems == ["fake.py: outer(quantisation_config=...) is not accepted any more",
                        "fake.py: train(learnin_rate=...) is not accepted any more"], problems


def test_the_course_wrappers_are_followed():
    wrappers = forwarding_wrappers()
    assert wrappers["load_causal_lm"] == ({"name", "dtype", "profile"}, "from_pretrained:model"), wrappers
    assert allowed_keywords("load_causal_lm", wrappers) >= {"quantization_config", "device_map", "profile"}
    assert "padding_sid" not in FROM_PRETRAINED_OK["tokenizer"] and "padding_side" in FROM_PRETRAINED_OK["tokenizer"]


def test_a_shared_name_is_checked_against_the_library_it_was_imported_from(monkeypatch):
    trl_collator = "from trl.trainer.sft_trainer import DataCollatorForLanguageModeling\n" \
                   "DataCollatorForLanguageModeling(pad_token_id=0)\n"
    hf_collator = "from transformers import DataCollatorForLanguageModeling\n" \
                  "DataCollatorForLanguageModeling(pad_token_id=0)\n"
    assert _plant(monkeypatch, trl_collator) == (1, []), "TRL's collator takes pad_token_id"
    assert _plant(monkeypatch, hf_collator)[1] == \
        ["fake.py: DataCollatorForLanguageModeling(pad_token_id=...) is not accepted any more"]
