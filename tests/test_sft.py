"""coursekit.sft: packing keeps examples apart, the trainer takes its precision from the profile (tiny models)."""

import dataclasses
import inspect

import torch

from coursekit import chat, recipes, sft
from coursekit.runtime import Precision, get_profile


# ---------------------------------------------------------------- packing keeps examples apart
def test_packing_keeps_examples_apart(tiny_llama, tmp_path):
    from trl import SFTConfig, SFTTrainer

    model, tok = tiny_llama
    ds = chat.prepare_dataset([{"prompt": f"Convert {i} hours to minutes.", "completion": str(60 * i)}
                              for i in range(1, 7)], tok)
    args = SFTConfig(output_dir=str(tmp_path), packing=True, max_length=256, per_device_train_batch_size=1,
                     report_to="none", activation_checkpointing=False, bf16=False,
                     dataloader_pin_memory=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    pos = batch["position_ids"][0]
    starts = (pos == 0).nonzero().flatten().tolist()
    assert len(starts) > 1, "several examples share one packed row"
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        bounds = [*starts, len(pos)]
        for a, b in zip(bounds, bounds[1:]):  # each example alone gives the same logits: no cross-attention
            alone = model(input_ids=batch["input_ids"][:, a:b]).logits[0]
            torch.testing.assert_close(packed[a:b], alone, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- one source of precision, one set of defaults
def test_the_trainer_takes_its_precision_from_the_profile():
    profile = dataclasses.replace(get_profile("smoke", verbose=False), precision=Precision("bf16", "a test"))
    args = sft.trl_arguments(sft.SFTSettings(), profile)
    assert (args["bf16"], args["fp16"]) == (True, False)
    args = sft.trl_arguments(sft.SFTSettings(), get_profile("smoke", verbose=False))
    assert (args["bf16"], args["fp16"]) == (False, False)


def test_settings_map_onto_trl_under_the_same_names(tmp_path):
    s = sft.SFTSettings(max_steps=7, batch_size=3, gradient_accumulation_steps=2, learning_rate=1e-3,
                        lr_scheduler_type="cosine", optim="adamw_torch", max_length=99, warmup_steps=2)
    from trl import SFTConfig

    args = SFTConfig(output_dir=str(tmp_path), **sft.trl_arguments(s, get_profile("smoke", verbose=False)))
    assert (args.max_steps, args.per_device_train_batch_size, args.gradient_accumulation_steps) == (7, 3, 2)
    assert (args.learning_rate, args.lr_scheduler_type.value, args.max_length, args.warmup_steps) == (1e-3, "cosine", 99, 2)


def test_recipe_lora_defaults_are_lora_configs():
    defaults = {k: p.default for k, p in inspect.signature(sft.lora_config).parameters.items()}
    recipe = recipes.Recipe("tiny:llama", [], "out")
    assert (recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout) == (defaults["r"], defaults["lora_alpha"],
                                                                       defaults["lora_dropout"])
    assert recipe.lora_target_modules == list(defaults["target_modules"])
