"""API-drift gate: every keyword we pass to trl, peft and transformers still exists.

The course's code and notebooks are scanned for calls to the library entry
points below; each keyword is looked up in ``inspect.signature`` of the live
object. A rename upstream (e.g. ``tokenizer`` → ``processing_class``) fails here
before it fails in a student's notebook.
"""

import ast
import inspect
import json

import peft
import transformers
import trl
from transformers import GenerationConfig

from coursekit import course
from coursekit.gpt2 import GPT2

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


def calls():
    for where, src in sources():
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                kws = [k.arg for k in node.keywords if k.arg]
                if name and kws:
                    yield where, name, kws


def test_every_keyword_we_pass_exists():
    problems, checked = [], 0
    for where, name, kws in calls():
        if name in CHECKED:
            params = inspect.signature(CHECKED[name]).parameters
            allowed = set(params) | FORWARDED.get(name, set())
        elif name == "generate":
            allowed = GENERATE_OK
        else:
            continue
        checked += 1
        problems += [f"{where}: {name}({kw}=...) is not accepted any more" for kw in kws if kw not in allowed]
    assert checked > 0, "the scan found no library calls: the gate would be vacuous"
    assert problems == []


def test_the_gate_catches_a_renamed_keyword(monkeypatch):
    fake = "from trl import SFTTrainer\nSFTTrainer(model=m, tokenizer=t)\n"
    monkeypatch.setattr(__import__(__name__), "sources", lambda: iter([("fake.py", fake)]))
    found = [(n, kws) for _, n, kws in calls()]
    assert found == [("SFTTrainer", ["model", "tokenizer"])]
    assert "tokenizer" not in inspect.signature(trl.SFTTrainer).parameters  # renamed to processing_class


def test_the_settings_we_hand_trl_are_sftconfig_keywords():
    """sft.trl_arguments builds SFTConfig's keywords as a dict, which the scan above cannot see: check them here."""
    from coursekit import sft
    from coursekit.runtime import get_profile

    passed = set(sft.trl_arguments(sft.SFTSettings(), get_profile("smoke", verbose=False)))
    assert passed - set(inspect.signature(trl.SFTConfig).parameters) == set()
