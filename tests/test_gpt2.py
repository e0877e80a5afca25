import pytest
import torch
from transformers import GPT2Config as HFConfig
from transformers import GPT2LMHeadModel

from coursekit.gpt2 import GPT2, GPT2Config, config_mismatch, next_token_probs


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
    """Both projections that write into the residual stream (attn.c_proj, mlp.c_proj) start at 0.02/sqrt(2·n_layer)."""
    torch.manual_seed(0)
    n_layer = 8
    model = GPT2(GPT2Config(n_layer=n_layer, n_head=4, n_embd=256, block_size=16, vocab_size=50))
    scaled = 0.02 / (2 * n_layer) ** 0.5  # 0.005
    # 65,536 weights per matrix: the sample std is within ~0.3% of the true one; 5% is margin
    for i, block in enumerate(model.transformer.h):
        for name, layer, want in (("attn.c_attn", block.attn.c_attn, 0.02), ("attn.c_proj", block.attn.c_proj, scaled),
                                  ("mlp.c_fc", block.mlp.c_fc, 0.02), ("mlp.c_proj", block.mlp.c_proj, scaled)):
            std = layer.weight.std().item()
            assert std == pytest.approx(want, rel=0.05), f"h.{i}.{name}: weight std {std:.5f}, expected {want:.5f}"
            assert torch.count_nonzero(layer.bias) == 0, f"h.{i}.{name}: bias not zero at init"


def test_eval_ignores_dropout():
    """In eval, a model with dropout=0.5 is deterministic and equal to the same weights with dropout=0."""
    torch.manual_seed(0)
    sizes = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=50)
    noisy = GPT2(GPT2Config(dropout=0.5, **sizes))
    clean = GPT2(GPT2Config(dropout=0.0, **sizes))
    clean.load_state_dict(noisy.state_dict())
    idx = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = clean.eval()(idx)[0]
        noisy.eval()
        first, second = noisy(idx)[0], noisy(idx)[0]
        noisy.train()
        trained = noisy(idx)[0]
    gap = (first - want).abs().max().item()
    assert gap < 1e-6 and torch.equal(first, second), f"eval with dropout=0.5 is {gap:.2e} from dropout=0"
    moved = (trained - want).abs().max().item()
    assert moved > 1e-2, f"train mode with dropout=0.5 moved the logits by only {moved:.2e}: is dropout wired?"


class FixedLogits(GPT2):
    """A GPT2 whose every position predicts the same logits (B, T, V): to test sampling alone."""

    def __init__(self, logits):
        super().__init__(GPT2Config(n_layer=1, n_head=1, n_embd=8, block_size=8, vocab_size=len(logits)))
        self.fixed = torch.tensor(logits)

    def forward(self, idx, targets=None):
        return self.fixed.expand(*idx.shape, -1), None


@pytest.mark.parametrize("temperature, top_k", [(0.5, None), (1.0, None), (2.0, None), (2.0, 2)])
def test_generate_samples_softmax_of_logits_over_temperature(temperature, top_k):
    logits = [0.0, 1.0, 2.0, 0.5]
    model = FixedLogits(logits)
    n = 20_000  # one token for each of n rows: a frequency's std is at most sqrt(0.25 / n) = 0.0035
    out = model.generate(torch.zeros(n, 1, dtype=torch.long), 1, temperature=temperature, top_k=top_k,
                         generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(out[:, 1], minlength=len(logits)).double() / n
    want = torch.softmax(torch.tensor(logits, dtype=torch.float64) / temperature, dim=-1)
    if top_k is not None:  # only the top_k likeliest survive, renormalised
        keep = torch.zeros(len(logits), dtype=torch.bool)
        keep[torch.tensor(logits).topk(top_k).indices] = True
        want = torch.where(keep, want, 0.0) / want[keep].sum()
    gap = (freq - want).abs().max().item()
    # 0.02 is ~6 standard deviations; multiplying by T instead of dividing moves a frequency by > 0.1
    assert gap < 0.02, f"T={temperature}, top_k={top_k}: frequencies {freq.tolist()} vs softmax(logits/T) {want.tolist()}"
    assert top_k is None or (freq[~keep] == 0).all(), f"tokens outside the top {top_k} were drawn: {freq.tolist()}"


def test_next_token_probs_is_softmax_over_temperature():
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.5]], dtype=torch.float64)
    for t in (0.25, 0.5, 2.0, 4.0):
        got, want = next_token_probs(logits, temperature=t), torch.softmax(logits / t, dim=-1)
        torch.testing.assert_close(got, want, msg=lambda m, t=t: f"T={t}: {m}")


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
    one = torch.zeros(1, 1, dtype=torch.long)
    for kwargs, message in ((dict(temperature=0), r"^temperature=0: must be > 0"), (dict(top_k=0), r"^top_k=0: must be ≥ 1"),
                            (dict(max_new_tokens=-1), r"^max_new_tokens=-1: must be")):
        with pytest.raises(ValueError, match=message):
            model.generate(one, **{"max_new_tokens": 1, **kwargs})
    assert config_mismatch(GPT2Config(n_layer=2), GPT2Config(n_layer=3)) == ["n_layer"]


def test_default_config_is_gpt2_small_as_hf_sizes_it():
    """The defaults are GPT-2 small's sizes and layer-norm epsilon (HF's GPT2Config), without padding, and no
    dropout (pretraining from scratch, as the lesson runs it; HF's 0.1 is for fine-tuning its checkpoint)."""
    ours, hf = GPT2Config(), HFConfig()
    got = (ours.block_size, ours.vocab_size, ours.n_layer, ours.n_head, ours.n_embd, ours.layer_norm_eps)
    want = (hf.n_positions, hf.vocab_size, hf.n_layer, hf.n_head, hf.n_embd, hf.layer_norm_epsilon)
    assert got == want, (got, want)
    assert (ours.padded_vocab_size, ours.dropout) == (50257, 0.0), (ours.padded_vocab_size, ours.dropout)


def test_init_statistics_and_head_shape():
    """Every linear and embedding weight starts N(0, 0.02) (residual projections scaled, tested above), biases 0;
    the tied head reads C features and writes the padded vocabulary."""
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_head=4, n_embd=128, block_size=64, vocab_size=500, pad_vocab_to=64)
    model = GPT2(cfg)
    for name, weight in (("wte", model.transformer.wte.weight), ("wpe", model.transformer.wpe.weight),
                         ("h.0.attn.c_attn", model.transformer.h[0].attn.c_attn.weight),
                         ("h.1.mlp.c_fc", model.transformer.h[1].mlp.c_fc.weight)):
        mean, std = weight.mean().item(), weight.std().item()
        # ≥ 8,192 samples: the sample mean is within ~0.0002 of 0 and the std within ~1.5% of 0.02 (4 sigma)
        assert abs(mean) < 1e-3 and std == pytest.approx(0.02, rel=0.06), f"{name}: mean {mean:.5f} std {std:.5f}"
    assert (model.lm_head.in_features, model.lm_head.out_features) == (128, 512), model.lm_head


def test_non_embedding_count_drops_only_the_position_table():
    model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=30))
    assert model.num_params(non_embedding=True) == model.num_params() - 8 * 16, \
        (model.num_params(non_embedding=True), model.num_params())


def test_a_full_context_is_accepted_and_ignore_index_is_minus_100():
    torch.manual_seed(0)
    model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=30)).eval()
    idx = torch.randint(0, 30, (2, 8))
    logits, _ = model(idx)  # T == block_size is the whole context, not past it
    assert logits.shape == (2, 8, 30), logits.shape
    targets = idx.clone()
    targets[:, :5] = -100  # HF's label convention: these positions are not scored
    _, loss = model(idx, targets=targets)
    want = torch.nn.functional.cross_entropy(logits[:, 5:].reshape(-1, 30), idx[:, 5:].reshape(-1))
    torch.testing.assert_close(loss, want)


def test_defaults_sample_the_plain_softmax_and_top_k_past_the_vocabulary_keeps_all():
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0]])
    torch.testing.assert_close(next_token_probs(logits), torch.softmax(logits, -1))
    torch.testing.assert_close(next_token_probs(logits, top_k=10), torch.softmax(logits, -1))
    torch.manual_seed(0)
    model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=30)).eval()
    with torch.no_grad():
        model.transformer.wte.weight.mul_(40)  # peaked next-token distributions, so the temperature shows
    idx = torch.zeros(4, 3, dtype=torch.long)

    def sample(**kwargs):
        return model.generate(idx, 8, generator=torch.Generator().manual_seed(3), **kwargs)

    assert torch.equal(sample(), sample(temperature=1.0)), (sample(), sample(temperature=1.0))
    assert not torch.equal(sample(), sample(temperature=2.0)), "the test cannot tell T = 1 from T = 2"
    assert torch.equal(model.generate(idx, 0), idx), "max_new_tokens=0 returns the prompt unchanged"
