import pytest
import torch

from coursekit import runtime
from coursekit.runtime import get_device, get_profile, pick_precision, seed_everything, versions


def test_unknown_profile_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_profile("laptop")
    for name in ("smoke", "colab", "full"):
        assert name in str(err.value)


def test_env_var_chooses_profile(monkeypatch, capsys):
    monkeypatch.setenv("COURSEKIT_PROFILE", "smoke")
    profile = get_profile()
    assert profile.name == "smoke" and profile.offline
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and "smoke" in line and "COURSEKIT_PROFILE" in line


def test_env_var_unknown_profile_is_an_error(monkeypatch):
    monkeypatch.setenv("COURSEKIT_PROFILE", "huge")
    with pytest.raises(ValueError, match="Valid profiles"):
        get_profile()


def test_full_without_cuda_falls_back_to_cpu_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    profile = get_profile("full")
    out = capsys.readouterr().out
    assert profile.name == "full" and profile.device == "cpu"
    assert "falls back to cpu" in out and out.count("\n") == 1


def test_auto_detection(monkeypatch):
    monkeypatch.delenv("COURSEKIT_PROFILE", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setattr(runtime, "_cuda_memory_gb", lambda: 0.0)
    assert runtime.detect_profile()[0] == "smoke"
    monkeypatch.setattr(runtime, "_cuda_memory_gb", lambda: 80.0)
    assert runtime.detect_profile()[0] == "full"
    monkeypatch.setattr(runtime, "_cuda_memory_gb", lambda: 15.0)
    assert runtime.detect_profile()[0] == "smoke"
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    assert runtime.detect_profile()[0] == "colab"


def test_pick_value_per_profile():
    assert get_profile("colab", verbose=False).pick(smoke=1, colab=2, full=3) == 2


def test_device_order(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == "cpu"


@pytest.mark.parametrize("native_bf16, expected", [(True, "bf16"), (False, "fp16")])
def test_precision_on_gpus(monkeypatch, native_bf16, expected):
    calls = []

    def fake(including_emulation=True):
        calls.append(including_emulation)
        return native_bf16 or including_emulation  # a T4 "supports" bf16 only by emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", fake)
    p = pick_precision("cuda")
    assert p.name == expected and p.reason
    assert calls == [False]
    assert p.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[expected]


def test_precision_on_cpu():
    p = pick_precision("cpu")
    assert (p.name, p.dtype, p.bf16, p.fp16) == ("fp32", torch.float32, False, False)


def test_seed_everything_repeats():
    seed_everything(123)
    a = (torch.rand(3), __import__("numpy").random.rand(2), __import__("random").random())
    seed_everything(123)
    b = (torch.rand(3), __import__("numpy").random.rand(2), __import__("random").random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_versions_lists_the_stack():
    v = versions()
    assert v["torch"] == torch.__version__
    assert {"python", "transformers", "peft", "trl", "keras"} <= set(v)


def test_coursekit_seed_shifts_every_seed(monkeypatch, capsys):
    import torch

    from coursekit.runtime import effective_seed, seed_everything

    monkeypatch.setenv("COURSEKIT_SEED", "5")
    assert seed_everything(2) == 7 and effective_seed(1337) == 1342
    assert "seed 7 (the lesson's 2, shifted by $COURSEKIT_SEED=5)" in capsys.readouterr().out
    shifted = torch.rand(3)
    monkeypatch.delenv("COURSEKIT_SEED")
    assert seed_everything(7) == 7 and capsys.readouterr().out == ""  # no shift: nothing printed
    assert torch.equal(torch.rand(3), shifted)  # the shifted run is seed 7's run


def test_coursekit_seed_must_be_an_integer(monkeypatch):
    from coursekit.runtime import seed_everything

    monkeypatch.setenv("COURSEKIT_SEED", "one")
    with pytest.raises(ValueError, match="COURSEKIT_SEED='one' is not an integer"):
        seed_everything(0)


def _rehearsal(name: str) -> runtime.Profile:
    return runtime.Profile(name, "a test", "cpu", pick_precision("cpu"), rehearsal=True)


def test_size_follows_the_profile_and_a_rehearsal_takes_smoke_sizes():
    for name, want in (("smoke", 1), ("colab", 2), ("full", 3)):
        assert get_profile(name, verbose=False).size(smoke=1, colab=2, full=3) == want
        assert get_profile(name, verbose=False).size(smoke=1, colab=2, full=3, rehearsal=9) == want
    for name in ("colab", "full"):
        rehearsal = _rehearsal(name)
        assert rehearsal.size(smoke=1, colab=2, full=3) == 1  # how much: smoke's
        assert rehearsal.size(smoke=1, colab=2, full=3, rehearsal=9) == 9  # unless a rehearsal size is given
        assert rehearsal.pick(smoke="a", colab="b", full="c") == {"colab": "b", "full": "c"}[name]  # which: its own


def test_at_scale_runs_everywhere_but_a_rehearsal_which_counts_each_skip(capsys):
    assert get_profile("full", verbose=False).at_scale("anything") and get_profile("smoke", verbose=False).at_scale("x")
    assert capsys.readouterr().out == ""
    rehearsal = _rehearsal("colab")
    assert not rehearsal.at_scale("the loss halves") and not rehearsal.at_scale("MAE falls")
    lines = capsys.readouterr().out.splitlines()
    assert rehearsal.skipped == ["the loss halves", "MAE falls"]
    assert lines == [f"{runtime.SKIP_LINE} (1 so far): the loss halves", f"{runtime.SKIP_LINE} (2 so far): MAE falls"]
    assert _rehearsal("smoke").at_scale("smoke has no real scale to wait for")  # smoke sizes are its real sizes


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_coursekit_rehearsal_turns_a_rehearsal_on(monkeypatch, capsys, value, expected):
    monkeypatch.setenv(runtime.REHEARSAL_VAR, value)
    profile = get_profile("colab")
    assert profile.rehearsal is expected
    assert ("rehearsal:" in capsys.readouterr().out) is expected


# ---------------------------------------------------------------- a recipe's precision request
def test_bf16_on_a_gpu_without_it_falls_back_to_fp16(capsys):
    t4 = runtime.Precision("fp16", "T4")
    assert runtime.requested_precision(t4, "cuda", bf16=True).name == "fp16"
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    assert runtime.requested_precision(t4, "cuda", bf16="auto").name == "fp16"
    assert runtime.requested_precision(runtime.Precision("bf16", "H100"), "cuda", bf16=True).name == "bf16"


def test_fp16_true_wins_over_bf16_auto():
    h100 = runtime.Precision("bf16", "H100")
    assert runtime.requested_precision(h100, "cuda", "auto", True).name == "fp16"
    assert runtime.requested_precision(h100, "cuda", "auto", False).name == "bf16"
    assert runtime.requested_precision(h100, "cuda", False, False).name == "fp32"


def test_asking_on_a_cpu_keeps_fp32_and_says_so(capsys):
    P = runtime.get_profile("smoke", verbose=False)
    assert P.asking(bf16=True).precision.name == "fp32"
    assert "no CUDA GPU" in capsys.readouterr().out


def test_the_profile_places_models_and_autocasts():
    import torch

    P = runtime.get_profile("smoke", verbose=False)
    model = P.place(torch.nn.Linear(2, 2))
    assert next(model.parameters()).device.type == P.device and P.dtype == P.precision.dtype
    with P.autocast():  # fp32 on a CPU: a no-op, the matmul stays fp32
        assert model(torch.ones(1, 2)).dtype == torch.float32
    bf16 = runtime.Precision("bf16", "a test")
    with bf16.autocast("cpu"):
        assert model(torch.ones(1, 2)).dtype == torch.bfloat16


def test_a_loop_without_a_grad_scaler_runs_fp16_profiles_in_fp32():
    import torch

    t4 = runtime.Profile("colab", "a test", "cpu", runtime.Precision("fp16", "T4"))
    model = torch.nn.Linear(2, 2)
    with t4.autocast(scaled=False):  # no autocast: fp32
        assert model(torch.ones(1, 2)).dtype == torch.float32
    bf16 = runtime.Profile("full", "a test", "cpu", runtime.Precision("bf16", "H100"))
    with bf16.autocast(scaled=False):  # bf16 needs no scaler: it autocasts
        assert model(torch.ones(1, 2)).dtype == torch.bfloat16


def test_asking_judges_the_device_not_the_current_precision(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "pick_precision", lambda device: runtime.Precision("bf16", "H100"))
    lowered = runtime.Profile("full", "a test", "cuda", runtime.Precision("fp32", "asked for"))
    assert lowered.asking(bf16=True).precision.name == "bf16"  # the GPU has bf16, though the profile was fp32
    assert lowered.asking() is lowered  # auto keeps the profile as it is
    monkeypatch.setattr(runtime, "pick_precision", lambda device: runtime.Precision("fp16", "T4"))
    assert lowered.asking(bf16=True).precision.name == "fp16" and "falling back to fp16" in capsys.readouterr().out


def test_the_pretrain_precision_flag_follows_the_recipe_rules(capsys):
    from coursekit.pretrain import profile_for

    P = runtime.get_profile("smoke", verbose=False)
    assert profile_for("auto", P) is P
    assert profile_for("bf16", P).precision.name == "fp32" and "no CUDA GPU" in capsys.readouterr().out
    assert profile_for("fp32", P).precision.name == "fp32"


def test_an_unknown_precision_name_is_an_error_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown precision 'banana': use one of bf16, fp16, fp32"):
        runtime.Precision("banana", "a typo")
    assert runtime.Precision("fp16", "T4").fp16, "a valid name still builds"
