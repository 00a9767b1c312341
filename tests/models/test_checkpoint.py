"""Quantizer -> checkpoint -> loader round trip on a tiny Llama, for each activation scheme."""

import copy
import json

import pytest
import torch

from tests.models.tiny import tiny_llama, token_batches
from vllm_int8 import ops
from vllm_int8.linear import Int8Linear
from vllm_int8.models import (
    ACTIVATION_SCHEMES,
    load_quantized_model,
    parse_quantization_config,
    quantize_in_place,
    quantize_model,
    save_checkpoint,
)

SCHEMES = list(ACTIVATION_SCHEMES)


class Float64Oracle(torch.nn.Module):
    """One quantized linear in float64 on the same integers: x quantized by the reference op."""

    def __init__(self, tensors, name, scheme):
        super().__init__()
        c = ACTIVATION_SCHEMES[scheme]
        self.symmetric = c.input_symmetric
        self.w = tensors[f"{name}.weight"].double() * tensors[f"{name}.weight_scale"].double()  # [N, K]
        self.input_scale = tensors.get(f"{name}.input_scale")
        zp = tensors.get(f"{name}.input_zero_point")
        self.input_zp = None if zp is None else zp.to(torch.int32)

    def forward(self, x):
        q, s, zp = ops.torch_scaled_int8_quant(x.float(), self.input_scale, self.input_zp, self.symmetric)
        rows = q.reshape(-1, q.shape[-1]).double() - (0 if zp is None else zp.double().reshape(-1, 1))
        y = (rows * s.double().reshape(-1, 1)) @ self.w.t()
        return y.reshape(*x.shape[:-1], -1)


def oracle_model(float_model, tensors, scheme):
    model = copy.deepcopy(float_model).double()
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear) and f"{name}.weight_scale" in tensors:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, Float64Oracle(tensors, name, scheme))
    return model


@pytest.mark.parametrize("scheme", SCHEMES)
def test_round_trip_is_bit_exact_and_matches_float64(scheme, tmp_path):
    float_model = tiny_llama()
    batches = token_batches()
    config, tensors = quantize_model(float_model, scheme, batches)
    saved = save_checkpoint(tmp_path / scheme, float_model.config, config, tensors)

    raw = json.loads((saved / "config.json").read_text())["quantization_config"]
    assert parse_quantization_config(raw).config_groups["group_0"].input_activations.dynamic == scheme.startswith("dyn")
    loaded, layers = load_quantized_model(saved)
    assert len(layers) == 2 * 4 and all(isinstance(m, Int8Linear) for m in layers.values())  # qkv, o, gate_up, down
    assert sum(len(m.shard_names) for m in layers.values()) == 2 * 7  # every checkpoint linear is int8
    assert "lm_head" not in layers  # ignored

    in_memory = copy.deepcopy(float_model)
    quantize_in_place(in_memory, scheme, batches)
    ids = token_batches(1, 20, seed=7)[0]
    with torch.no_grad():
        logits = loaded(input_ids=ids).logits
        assert torch.equal(logits, in_memory(input_ids=ids).logits)  # save -> load: bit for bit
        expected = oracle_model(float_model, tensors, scheme)(input_ids=ids).logits
    err = (logits.double() - expected).abs().max().item()
    assert err <= 1e-3 * expected.abs().max().item(), f"max |logit error| {err:.3e}"


def test_static_scheme_needs_calibration():
    with pytest.raises(ValueError, match="calibration data"):
        quantize_model(tiny_llama(), "static-asym", [])


def test_tied_embeddings_are_not_saved_twice(tmp_path):
    model = tiny_llama(tie=True)
    config, tensors = quantize_model(model, "dynamic-sym")
    assert "lm_head.weight" not in tensors
    loaded, _ = load_quantized_model(save_checkpoint(tmp_path, model.config, config, tensors))
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()


def test_static_asymmetric_tensors_have_compressed_tensors_dtypes():
    _, tensors = quantize_model(tiny_llama(), "static-asym", token_batches())
    name = "model.layers.0.self_attn.q_proj"
    assert tensors[f"{name}.weight"].dtype == torch.int8
    assert tensors[f"{name}.weight_scale"].shape == (64, 1)
    assert tensors[f"{name}.input_scale"].shape == (1,) and tensors[f"{name}.input_scale"].item() > 0
    assert tensors[f"{name}.input_zero_point"].dtype == torch.int8


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fused_projections_equal_separate_ones_bit_for_bit(scheme, tmp_path):
    """q/k/v and gate/up fused into one layer each (one quant, one GEMM) give the unfused logits exactly."""
    from vllm_int8.models import load_quantized_state, replace_linear_layers

    float_model = tiny_llama()
    config, tensors = quantize_model(float_model, scheme, token_batches())
    fused, separate = copy.deepcopy(float_model), copy.deepcopy(float_model)
    fused_layers = replace_linear_layers(fused, config)
    load_quantized_state(fused, fused_layers, tensors)
    separate_layers = replace_linear_layers(separate, config, fuse=False)
    load_quantized_state(separate, separate_layers, tensors)
    assert len(fused_layers) == 8 and len(separate_layers) == 14
    assert fused_layers["model.layers.0.self_attn.qkv_proj"].logical_widths == [64, 32, 32]
    ids = token_batches(1, 20, seed=3)[0]
    with torch.no_grad():
        assert torch.equal(fused(input_ids=ids).logits, separate(input_ids=ids).logits)


def test_a_fused_slice_follows_its_input():
    """Siblings called on different inputs, or twice, or after an in-place change, still get their own answer."""
    from vllm_int8.models import quantize_in_place

    model = tiny_llama()
    quantize_in_place(model, "dynamic-asym")
    attn = model.model.layers[0].self_attn
    x, y = torch.randn(3, 64), torch.randn(3, 64)
    with torch.no_grad():
        full_x, full_y = attn.qkv_proj(x), attn.qkv_proj(y)
        assert torch.equal(attn.q_proj(x), full_x[:, :64])
        assert torch.equal(attn.k_proj(y), full_y[:, 64:96])  # another input: recomputed
        assert torch.equal(attn.q_proj(x), full_x[:, :64])  # asked twice
        x.mul_(2)
        assert torch.equal(attn.v_proj(x), attn.qkv_proj(x)[:, 96:])  # changed in place


def sharded_copy(saved, tmp_path):
    """The checkpoint re-saved as two shards plus an index file, as `save_pretrained` does."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(saved / "model.safetensors")
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text((saved / "config.json").read_text())
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, sharded / file)
    weight_map = {k: file for file, keys in shards.items() for k in keys}
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return sharded


def test_sharded_checkpoint_loads_like_the_single_file(tmp_path):
    float_model = tiny_llama()
    config, tensors = quantize_model(float_model, "dynamic-asym", ())
    saved = save_checkpoint(tmp_path / "one", float_model.config, config, tensors)
    sharded = sharded_copy(saved, tmp_path)
    ids = token_batches(1)[0]
    one, _ = load_quantized_model(saved)
    two, layers = load_quantized_model(sharded)
    assert layers and torch.equal(one(input_ids=ids).logits, two(input_ids=ids).logits)


@pytest.mark.parametrize("damage", ["missing shard", "truncated shard", "missing single file", "bad index"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    from vllm_int8.errors import UserInputError

    float_model = tiny_llama()
    config, tensors = quantize_model(float_model, "dynamic-sym", ())
    saved = save_checkpoint(tmp_path / "one", float_model.config, config, tensors)
    target = sharded_copy(saved, tmp_path) if "shard" in damage or "index" in damage else saved
    if damage == "missing shard":
        (target / "model-00002-of-00002.safetensors").unlink()
    elif damage == "truncated shard":
        shard = target / "model-00001-of-00002.safetensors"
        shard.write_bytes(shard.read_bytes()[:100])
    elif damage == "missing single file":
        (target / "model.safetensors").unlink()
    else:
        (target / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(UserInputError) as error:
        load_quantized_model(target)
    message = str(error.value)
    assert "\n" not in message and str(target) in message


def test_checkpoint_config_names_its_architecture_and_no_local_path(tmp_path):
    float_model = tiny_llama()
    float_model.config.architectures = None  # as a GGUF-loaded config has it
    float_model.config._name_or_path = "/somewhere/on/this/machine"
    config, tensors = quantize_model(float_model, "dynamic-asym", ())
    saved = json.loads((save_checkpoint(tmp_path, float_model.config, config, tensors) / "config.json").read_text())
    assert saved["architectures"] == ["LlamaForCausalLM"] and "_name_or_path" not in saved
