"""A recipe on its profile (coursekit.recipes.rehearsal): smoke-sized in a rehearsal with one line, the optimizer the
device runs, a gated model in a rehearsal; and the samples a recipe answers after training (recipes.samples)."""

import pytest
import yaml

from coursekit import course, finetune, hub, quant, recipes
from coursekit.chat import PLAIN_TEMPLATE, chat_template_for
from coursekit.recipes import rehearsal, samples
from coursekit.runtime import Precision, Profile
from coursekit.sampling import sample_generations

RECIPES = course.ROOT / "recipes"
STORY_PROMPTS = ["A bright student was working with a fuzzy scientist on a project.",
                 "A global mission for humanity through overcrowded cities."]


def profile(name="colab", rehearsal_on=True, device="cpu"):
    return Profile(name, "a test", device, Precision("fp32", "no CUDA"), rehearsal=rehearsal_on)


def tiny_recipe(tmp_path, **kw):
    base = {"base_model": "tiny:llama", "datasets": [{"path": "data/units.jsonl", "split": "train[:80]"}],
            "output_dir": str(tmp_path / "out"), "max_steps": 3, "batch_size": 4, "learning_rate": 1e-3,
            "max_length": 128, "val_set_size": 4}
    return {**base, **kw}


def rehearse_here(monkeypatch):
    """What `bash course.sh rehearse` sets for a recipe (the profile is read when run_recipe starts)."""
    monkeypatch.setenv("COURSEKIT_PROFILE", "colab")
    monkeypatch.setenv("COURSEKIT_REHEARSAL", "1")


# ---------------------------------------------------------------- rehearsal scale
def test_a_rehearsal_caps_the_work_in_one_line_and_keeps_the_recipes_own_choices(capsys):
    real = recipes.load_recipe(RECIPES / "tinyllama_storyteller.yml")
    small = rehearsal.for_profile(real, profile())
    t = small.training
    got = (t.max_steps, t.max_length, t.batch_size, t.gradient_accumulation_steps, small.val_set_size,
           small.sample_max_new_tokens)
    assert got == (2, 128, 2, 1, 4, 24), got
    kept = ("base_model", "chat_template", "lora_r", "lora_target_modules", "load_in_4bit", "datasets",
            "sample_prompts", "output_dir")
    changed = [k for k in kept if getattr(small, k) != getattr(real, k)]
    assert not changed, f"a rehearsal changed the recipe's own {changed}"
    assert (t.packing, t.optim, t.learning_rate, t.gradient_checkpointing) == (True, "adamw_torch", 2e-4, True), t
    out = capsys.readouterr().out
    assert out == ("rehearsal: smoke-sized run (max_steps 2 (was 1 epoch), max_length 128 (was 1024), batch 2×1 "
                   "(was 4×2), 4 held out (was 20), 24 new tokens a sample (was 512), at most 32 training rows)\n"), out


def test_a_recipe_already_within_the_caps_keeps_its_sizes_and_the_line_says_only_the_rows(tmp_path, capsys):
    recipe = recipes.load_recipe(tiny_recipe(tmp_path, max_steps=1, batch_size=1, max_length=64, val_set_size=0))
    small = rehearsal.for_profile(recipe, profile("full"))
    assert (small.training, small.val_set_size) == (recipe.training, recipe.val_set_size), small.training
    assert capsys.readouterr().out == "rehearsal: smoke-sized run (at most 32 training rows)\n"


@pytest.mark.parametrize("name", ["smoke", "colab", "full"])
def test_outside_a_rehearsal_a_recipe_runs_as_written_and_nothing_is_printed(capsys, name):
    real = recipes.load_recipe(RECIPES / "qwen3_medical.yml")
    assert rehearsal.for_profile(real, profile(name, rehearsal_on=False)) == real
    assert rehearsal.rehearsal_rows((list(range(50)), [1]), profile(name, rehearsal_on=False)) == (list(range(50)), [1])
    assert capsys.readouterr().out == ""


def test_run_recipe_in_a_rehearsal_trains_two_steps_of_two_on_at_most_32_rows(tmp_path, monkeypatch, capsys):
    rehearse_here(monkeypatch)
    held_out = []
    monkeypatch.setattr(recipes, "score_answers", lambda model, tok, ds: held_out.append(len(ds)) or {"loss": 1.0})
    run = recipes.run_recipe(tiny_recipe(tmp_path, max_steps=50, batch_size=8, max_length=512, val_set_size=10),
                             progress=False, smoke_sized=True)
    args = run.trainer.args
    got = (len(run.losses), args.per_device_train_batch_size, args.gradient_accumulation_steps, args.max_length)
    assert got == (2, 2, 1, 128), got
    assert len(run.trainer.train_dataset) <= rehearsal.REHEARSAL_ROWS, len(run.trainer.train_dataset)
    assert held_out == [4], held_out
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("rehearsal:")]
    assert len(lines) == 1 and "max_steps 2 (was max_steps 50)" in lines[0], lines


def test_a_notebooks_recipe_in_a_rehearsal_runs_as_given(tmp_path, monkeypatch, capsys):
    """Lessons 04 and 05 size their recipe by the profile and compare it with their own run: no caps there."""
    rehearse_here(monkeypatch)
    run = recipes.run_recipe(tiny_recipe(tmp_path, max_steps=3, batch_size=4, max_length=256, val_set_size=0),
                             progress=False)
    args = run.trainer.args
    got = (len(run.losses), args.per_device_train_batch_size, args.max_length)
    assert got == (3, 4, 256), got  # above every cap: max_steps 2, batch 2, max_length 128
    assert "smoke-sized" not in capsys.readouterr().out


# ---------------------------------------------------------------- the optimizer the device runs
def test_a_recipe_with_a_paged_optimizer_trains_on_the_cpu_with_bitsandbytes_adamw(tmp_path, capsys):
    pytest.importorskip("bitsandbytes")
    run = recipes.run_recipe(tiny_recipe(tmp_path, optim="paged_adamw_32bit", max_steps=2, val_set_size=0),
                             progress=False)
    optimizer = getattr(run.trainer.optimizer, "optimizer", run.trainer.optimizer)
    assert type(optimizer).__module__.startswith("bitsandbytes.optim"), type(optimizer)
    assert capsys.readouterr().out.count("optimizer paged_adamw_32bit on cpu") == 1  # tests/test_quiet.py: only ours


def test_where_bitsandbytes_cannot_run_the_recipe_trains_with_adamw_torch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quant, "_bnb_problem", lambda device: "bitsandbytes cannot run here")
    run = recipes.run_recipe(tiny_recipe(tmp_path, optim="paged_adamw_32bit", max_steps=1, val_set_size=0),
                             progress=False)
    assert run.trainer.args.optim == "adamw_torch", run.trainer.args.optim
    assert "training with adamw_torch" in capsys.readouterr().out


# ---------------------------------------------------------------- a gated model
def test_a_rehearsal_needs_no_token_for_the_gated_model_but_a_real_run_does(monkeypatch, capsys):
    monkeypatch.setattr(hub, "_hf_token", lambda: None)
    qlora = recipes.load_recipe(RECIPES / "llama32_price_qlora.yml")
    rehearsal.for_profile(qlora, profile("full"))
    out = capsys.readouterr().out
    assert "gated meta-llama/Llama-3.2-3B from the stand-in Hub, no HF_TOKEN needed" in out, out
    with pytest.raises(hub.AssetError, match="is gated: accept its licence on the Hub, then set HF_TOKEN"):
        rehearsal.for_profile(qlora, profile("full", rehearsal_on=False))
    assert hub.check_access("meta-llama/Llama-3.2-3B", rehearsal=True) is True
    assert hub.check_access("Qwen/Qwen3-0.6B", rehearsal=True) is False  # not gated: nothing waived


# ---------------------------------------------------------------- sample prompts
@pytest.mark.parametrize("change, match", [
    ({"sample_prompts": "A fox."}, r"sample_prompts must be a list of strings, got 'A fox.': write each prompt on its own"),
    ({"sample_prompts": ["A fox.", "  "]}, r"sample_prompts\[1\] is blank: give each prompt some text"),
    ({"sample_prompts": ["A fox.", 42]}, r"sample_prompts\[1\] is 42, not a string: quote it"),
    ({"sample_prompts": ["A fox."], "sample_max_new_tokens": 0}, r"sample_max_new_tokens=0: must be at least 1"),
    ({"sample_max_new_tokens": "many"}, r"'sample_max_new_tokens' must be a int, got 'many'"),
    ({"sample_prompt": ["A fox."]}, r"'sample_prompt' \(did you mean 'sample_prompts'\?\)"),
])
def test_bad_sample_prompts_fail_clearly_at_check(tmp_path, capsys, change, match):
    with pytest.raises(recipes.RecipeError, match=match):
        recipes.load_recipe(tiny_recipe(tmp_path, **change))
    path = tmp_path / "r.yml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, **change)))
    assert finetune.main([str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err


def test_the_storyteller_recipe_carries_the_course_notes_two_prompts():
    recipe = recipes.load_recipe(RECIPES / "tinyllama_storyteller.yml")
    assert recipe.sample_prompts == STORY_PROMPTS, recipe.sample_prompts
    assert "after training: 2 sample prompt(s), up to 512 new tokens each" in recipes.describe(recipe)


def test_each_sample_is_prompted_as_the_rows_were_trained_and_decoded_greedily(tiny_llama, monkeypatch):
    model, tok = tiny_llama
    recipe = recipes.load_recipe(RECIPES / "tinyllama_storyteller.yml", sample_max_new_tokens=5, chat_template="plain")
    calls = []

    def spy(*args, **kw):
        calls.append((args, kw))
        return sample_generations(*args, **kw)

    monkeypatch.setattr(samples, "sample_generations", spy)
    first = samples.recipe_samples(recipe, model, tok)
    assert [p for p, _ in first] == STORY_PROMPTS and samples.recipe_samples(recipe, model, tok) == first
    (_, _, messages), kw = calls[0]
    system = recipe.datasets[0].system
    assert messages == [{"role": "system", "content": system}, {"role": "user", "content": STORY_PROMPTS[0]}], messages
    assert kw["template_kwargs"]["chat_template"] == chat_template_for(tok, "plain") == PLAIN_TEMPLATE
    assert (kw["do_sample"], kw["max_new_tokens"]) == (False, 5), kw


def test_a_chat_template_passed_in_renders_on_a_tokenizer_without_one(tiny_llama):
    model, tok = tiny_llama
    own, tok.chat_template = tok.chat_template, None
    try:
        g = sample_generations(model, tok, [{"role": "user", "content": "Name a colour."}], max_new_tokens=3,
                               do_sample=False, template_kwargs={"chat_template": PLAIN_TEMPLATE})
    finally:
        tok.chat_template = own
    assert g.prompt == (tok.bos_token or "") + "Name a colour.", g.prompt
    assert len(g.token_ids[0]) <= 3, g.token_ids


def test_the_cli_prints_a_story_for_each_sample_prompt_after_training(tmp_path, capsys):
    path = tmp_path / "story.yml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, max_steps=1, val_set_size=0, sample_prompts=STORY_PROMPTS,
                                               sample_max_new_tokens=6)))
    assert finetune.main([str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    trained = next(i for i, line in enumerate(out) if line.startswith("trained 1 logged steps"))
    headers = [i for i, line in enumerate(out) if line.startswith(samples.SAMPLE_LINE)]
    assert [out[i] for i in headers] == [f"sample 1/2 · {STORY_PROMPTS[0]}", f"sample 2/2 · {STORY_PROMPTS[1]}"], out
    assert headers[0] > trained and all(out[i + 1].startswith("    ") for i in headers), out[trained:]
