import pytest
import torch
from transformers import GPT2Config as HFConfig
from transformers import GPT2LMHeadModel

from coursekit.gpt2 import GPT2, GPT2Config, config_mismatch


def tiny_hf(seed=0):
    torch.manual_seed(seed)
    cfg = HFConfig(n_layer=2, n_head=4, n_embd=64, n_positions=32, vocab_size=101,
                   resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(cfg).eval()


@pytest.mark.parametrize("pad", [1, 64])
def test_from_hf_gives_the_same_logits_and_loss(pad):
    hf = tiny_hf()
    ours = GPT2.from_hf(hf, pad_vocab_to=pad).eval()
    idx = torch.randint(0, 101, (3, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf(idx, labels=idx)
        logits, _ = ours(idx)
        _, loss = ours(idx[:, :-1], targets=idx[:, 1:])
    torch.testing.assert_close(logits, ref.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss, ref.loss, atol=1e-6, rtol=1e-5)


def test_gpt2_small_has_124m_parameters_and_padded_vocab():
    cfg = GPT2Config.gpt2_small()
    assert cfg.padded_vocab_size == 50304 and GPT2Config.gpt2_small(padded=False).padded_vocab_size == 50257
    with torch.device("meta"):
        model = GPT2(cfg)
    n = model.num_params()
    # 50304·768 (wte, tied) + 1024·768 (wpe) + 12 blocks · 7,087,872 + 2·768 (ln_f)
    assert n == 50304 * 768 + 1024 * 768 + 12 * 7_087_872 + 2 * 768 == 124_475_904
    assert model.lm_head.weight is model.transformer.wte.weight


def test_residual_projections_are_scaled_at_init():
    torch.manual_seed(0)
    model = GPT2(GPT2Config(n_layer=8, n_head=4, n_embd=256, block_size=16, vocab_size=50))
    std_fc = model.transformer.h[0].mlp.c_fc.weight.std().item()
    std_proj = model.transformer.h[0].mlp.c_proj.weight.std().item()
    assert std_fc == pytest.approx(0.02, rel=0.05) and std_proj == pytest.approx(0.02 / 4, rel=0.05)


def test_causal_future_tokens_do_not_leak():
    model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=20)).eval()
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[1, 2, 3, 9, 9]])
    with torch.no_grad():
        torch.testing.assert_close(model(a)[0][:, :3], model(b)[0][:, :3])


def test_generate_top_k_1_is_greedy_and_lengths_are_right():
    model = GPT2.from_hf(tiny_hf()).eval()
    idx = torch.tensor([[5, 6, 7]])
    out = model.generate(idx, 6, top_k=1)
    assert out.shape == (1, 9) and torch.equal(out[:, :3], idx)
    step = idx
    for _ in range(6):
        step = torch.cat([step, model(step)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, step)


def test_bad_input():
    with pytest.raises(ValueError, match="divisible"):
        GPT2Config(n_embd=10, n_head=3)
    model = GPT2(GPT2Config(n_layer=1, n_head=1, n_embd=8, block_size=4, vocab_size=10))
    with pytest.raises(ValueError, match="block_size=4"):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 1, temperature=0)
    assert config_mismatch(GPT2Config(n_layer=2), GPT2Config(n_layer=3)) == ["n_layer"]
