"""SmoothQuant: smoothing alone leaves the float function unchanged, evens the channels, refuses what it cannot fold."""

import copy

import pytest
import torch

from tests.models.tiny import tiny_llama, token_batches
from vllm_int8.models import quantize_model
from vllm_int8.models.smoothquant import (
    LLAMA_MAPPINGS,
    fold_smoothing,
    observe_channel_maxima,
    parse_alpha,
    resolve_alpha,
    smooth_groups,
    smooth_model,
    smoothing_scales,
)


def _with_outlier_channels(model):
    """Give the norms a few large channels, as trained LLMs have, so smoothing has work to do."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith("layernorm"):
                module.weight.mul_(torch.rand_like(module.weight) * 0.5 + 0.75)
                module.weight[:3] *= 25.0
    return model


def test_every_llama_mapping_is_found():
    groups = smooth_groups(tiny_llama())
    assert len(groups) == 2 * len(LLAMA_MAPPINGS)  # two decoder layers
    assert {g.linears for g in groups if g.previous.endswith("mlp.up_proj")} == {
        (f"model.layers.{i}.mlp.down_proj",) for i in range(2)
    }


@pytest.mark.parametrize("alpha", [0.3, 0.65, 0.9])
def test_smoothing_alone_leaves_the_float_model_unchanged(alpha):
    model = _with_outlier_channels(tiny_llama())
    smoothed = copy.deepcopy(model)
    smooth_model(smoothed, token_batches(), alpha)
    changed = [n for n, p in smoothed.named_parameters() if not torch.equal(p, dict(model.named_parameters())[n])]
    assert any("layernorm" in n for n in changed) and any("down_proj" in n for n in changed)
    ids = token_batches(n=1, seed=7)[0]
    with torch.no_grad():
        torch.testing.assert_close(smoothed(input_ids=ids).logits, model(input_ids=ids).logits, rtol=1e-4, atol=1e-4)


def test_smoothing_evens_the_activation_channels():
    """The spread of per-channel maxima at q_proj's input shrinks (that is what a per-tensor scale needs)."""
    model = _with_outlier_channels(tiny_llama())
    groups = smooth_groups(model)
    before = observe_channel_maxima(model, groups, token_batches())
    smooth_model(model, token_batches(), 0.65)
    after = observe_channel_maxima(model, groups, token_batches())
    name = groups[0].linears[0]
    assert (after[name].max() / after[name].mean()) < 0.5 * (before[name].max() / before[name].mean())


def test_scales_of_dead_channels_are_one_and_alpha_is_checked():
    act = torch.tensor([4.0, 0.0, 1.0])
    weight = torch.tensor([[1.0, 2.0, 0.0], [0.5, 1.0, 0.0]])
    scales = smoothing_scales(act, [weight], 0.5)
    assert scales[1] == 1 and scales[2] == 1 and torch.isclose(scales[0], torch.tensor(2.0))
    with pytest.raises(ValueError, match="alpha"):
        smoothing_scales(act, [weight], 1.5)
    with pytest.raises(ValueError, match="alpha"):
        smooth_model(tiny_llama(), token_batches(), -0.1)


class _OffsetNorm(torch.nn.Module):
    """Gemma-style `x * (1 + w)`: dividing w by s does not divide the output by s."""

    def __init__(self, width):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(width))

    def forward(self, x):
        return x * (1 + self.weight)


def test_a_norm_that_is_not_w_times_f_of_x_is_refused():
    model = tiny_llama()
    model.model.layers[0].input_layernorm = _OffsetNorm(64)
    group = smooth_groups(model)[0]
    with pytest.raises(ValueError, match="not w \\* f\\(x\\)"):
        fold_smoothing(model, group, torch.full((64,), 2.0))


def test_a_model_without_the_mappings_is_refused():
    with pytest.raises(ValueError, match="no mapped layers"):
        smooth_model(torch.nn.Sequential(torch.nn.Linear(4, 4)), token_batches(), 0.5)


def test_smoothed_static_checkpoint_is_plain_w8a8():
    """Same tensor names and dtypes as without smoothing: the smoothing lives in the weights."""
    plain_config, plain = quantize_model(tiny_llama(), "static-asym", token_batches())
    smooth_config, smooth = quantize_model(tiny_llama(), "static-asym", token_batches(), smoothquant=0.65)
    assert plain_config == smooth_config
    assert {k: v.dtype for k, v in plain.items()} == {k: v.dtype for k, v in smooth.items()}
    assert not torch.equal(
        plain["model.layers.0.input_layernorm.weight"], smooth["model.layers.0.input_layernorm.weight"]
    )


def test_alpha_settings_parse_and_resolve_per_scheme():
    assert parse_alpha("0.5") == 0.5 and parse_alpha(0.8) == 0.8 and parse_alpha("default") == "default"
    assert parse_alpha("off") is None and parse_alpha("None") is None and parse_alpha(None) is None
    for bad, message in (("1.5", "must lie in"), ("-0.1", "must lie in"), ("high", "expected an alpha")):
        with pytest.raises(ValueError, match=message):
            parse_alpha(bad)
    assert resolve_alpha("static-sym", "default") == resolve_alpha("static-asym", "default") == 0.8
    assert resolve_alpha("dynamic-asym", "default") == resolve_alpha("dynamic-sym", "default") == 0.65
    assert resolve_alpha("static-asym", 0.3) == 0.3 and resolve_alpha("static-asym", None) is None
