"""Tuned tile configs: the shipped files load on CPU, buckets resolve, unknown shapes fall back."""

import json
from dataclasses import replace

import pytest
import torch

from vllm_int8.ops import hopper_configs, mm_configs
from vllm_int8.ops.mm_configs import MMConfig, device_key, heuristic_config, load_tuned, pick_bucket, select_config
from vllm_int8.platform import DeviceInfo

SHIPPED = sorted(mm_configs.TUNED_DIR.glob("*.json"))
A100 = DeviceInfo("NVIDIA A100-SXM4-80GB", (8, 0), 108, False, None)
H100 = DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0), 132, False, None)
H100_PCIE = DeviceInfo("NVIDIA H100 PCIe", (9, 0), 114, False, None)


def test_device_key_is_a_file_name():
    assert device_key("NVIDIA H100 80GB HBM3") == "NVIDIA_H100_80GB_HBM3"
    assert device_key("AMD Instinct MI325X") == "AMD_Instinct_MI325X"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_files_load_and_are_sane(path):
    device = json.loads(path.read_text())["device"]
    assert device_key(device) == path.stem
    table = load_tuned(device)
    assert table, "a shipped tuning file must hold configs"
    for buckets in table.values():
        for m, cfg in buckets.items():
            assert m >= 1 and cfg.block_m >= 16 and cfg.block_n >= 16 and cfg.block_k >= 32
            assert cfg.num_warps in (1, 2, 4, 8, 16) and cfg.num_stages >= 1


def test_at_least_one_device_ships():
    assert any(p.stem == "NVIDIA_H100_80GB_HBM3" for p in SHIPPED)


def test_pick_bucket_takes_only_the_bucket_of_m():
    buckets = {1: MMConfig(16, 32, 256), 16: MMConfig(16, 64, 256), 256: MMConfig(64, 128, 128)}
    assert pick_bucket(buckets, 1) == buckets[1]
    assert pick_bucket(buckets, 2) == buckets[16]
    assert pick_bucket(buckets, 200) == buckets[256]
    assert pick_bucket(buckets, 17) is None  # bucket 32 was not tuned: the untuned rule decides
    assert pick_bucket(buckets, 100000) is None  # tuned only up to 256
    prefill = {1024: MMConfig(128, 256, 128, tma=1), 8192: MMConfig(256, 128, 128, tma=1)}
    assert pick_bucket(prefill, 1) is None and pick_bucket(prefill, 600) == prefill[1024]  # no prefill tile for decode
    assert pick_bucket(prefill, 100000) == prefill[8192]  # the table covers the largest bucket


def test_unknown_device_or_shape_falls_back_to_the_heuristic(monkeypatch, tmp_path):
    assert load_tuned("No Such GPU", tmp_path) == {}
    assert select_config(300, 123, 456, torch.device("cpu")) == heuristic_config(300, 123, 456)
    monkeypatch.setattr(mm_configs, "device_info", lambda device: A100)
    select_config.cache_clear()
    assert select_config(4096, 123, 456, torch.device("cuda")) == heuristic_config(4096, 123, 456)
    select_config.cache_clear()


def test_hopper_prefill_without_a_tuned_entry_takes_the_tma_kernel(monkeypatch):
    monkeypatch.setattr(mm_configs, "device_info", lambda device: H100)
    select_config.cache_clear()
    try:
        cuda = torch.device("cuda")
        decode = select_config(16, 3584, 3584, cuda)  # decode: the pointer kernel's swapped tiles
        assert decode.swap_ab and not decode.tma and decode.block_n == 64 and decode.split_k >= 1
        # 56 column tiles (one per SM at most): the deep tiles; 592 (gate_up): the shallower ones
        assert select_config(1, 3584, 18944, cuda) == hopper_configs.HOPPER_DECODE_DEEP
        # a tensor-parallel shard's qkv (20 or 40 column tiles): K split until ~3/4 of the SMs stream it
        assert select_config(1, 1280, 8192, cuda) == replace(hopper_configs.HOPPER_DECODE_DEEP, split_k=4)
        assert select_config(16, 2560, 8192, cuda) == replace(hopper_configs.HOPPER_DECODE_DEEP, split_k=2)
        wide = select_config(1, 37888, 3584, cuda)
        assert wide.swap_ab and wide.block_k == hopper_configs.HOPPER_DECODE.block_k
        # mid batch: one row tile, K split until the column tiles fill the SMs (56 tiles: split 2)
        rule = hopper_configs.hopper_config  # the rule itself, where the H100 table lists the shape
        assert select_config(17, 3584, 3584, cuda) == replace(hopper_configs.HOPPER_MID_32, split_k=2)
        assert rule(64, 5120, 8192) == hopper_configs.HOPPER_MID_64  # 80 tiles: whole
        assert rule(64, 4096, 14336) == replace(hopper_configs.HOPPER_MID_64, split_k=2)
        # a short K over at most one 64-column tile per SM: 32-column tiles (192 of them: whole)
        assert rule(64, 6144, 4096) == hopper_configs.HOPPER_MID_64_NARROW
        # above 64 rows: the largest tile leaving 1.6 waves (211+ tiles on 132 SMs)
        big, medium, small = hopper_configs.HOPPER_MID_TILES
        assert select_config(128, 3584, 3584, cuda) == small  # 64x128: 56 tiles; 64x64: 112
        assert select_config(256, 8192, 7168, cuda) == medium  # 128x128: 128 tiles; 64x128: 256
        assert select_config(512, 7168, 8192, cuda) == big  # 128x128: 224 tiles
        # 64x64 tiles short of the SMs over a long K split it in two (112 tiles, K = 18944)
        assert rule(128, 3584, 18944) == replace(small, split_k=2)
        # the persistent TMA kernel, three programs per SM: where 64x64 tiles sit three per SM
        # (384 tiles), and where 296 tiles of 128x128, two per SM, leave a second wave 12% full
        assert rule(256, 6144, 4096) == hopper_configs.HOPPER_MID_PERSISTENT
        assert rule(128, 37888, 3584) == hopper_configs.HOPPER_MID_PERSISTENT
        assert rule(512, 37888, 3584) == big  # five waves 90% full
        assert select_config(4096, 37888, 3584, cuda) == hopper_configs.HOPPER_WIDE
        assert select_config(1024, 3584, 3584, cuda) == hopper_configs.HOPPER_WIDE  # 112 wide tiles: one wave
        assert select_config(1024, 4608, 3584, cuda) == hopper_configs.HOPPER_NARROW  # 144 wide tiles: 2 waves
        assert select_config(513, 3584, 18944, cuda) == hopper_configs.HOPPER_SMALL  # 252 small tiles: 2 waves
    finally:
        select_config.cache_clear()


def test_mid_batch_tma_tiles_fall_back_to_the_pointer_kernel_where_m_leaves_a_row_tile_part_empty(monkeypatch):
    """Rule or table: the persistent TMA kernel's mid-batch tiles run only at M filling their row
    tiles; at M = 200 the same tile runs on the pointer kernel; prefill TMA tiles stay TMA."""
    monkeypatch.setattr(mm_configs, "device_info", lambda device: H100)
    select_config.cache_clear()
    try:
        cuda, persistent = torch.device("cuda"), hopper_configs.HOPPER_MID_PERSISTENT
        assert select_config(256, 4608, 3584, cuda) == persistent  # 288 tiles of 64x64, three per SM
        pointer = select_config(200, 4608, 3584, cuda)
        assert not pointer.tma and not pointer.programs_per_sm
        assert replace(pointer, tma=1, programs_per_sm=3) == persistent
        assert mm_configs.full_row_tiles_for_tma(persistent, 192) == persistent
        assert mm_configs.full_row_tiles_for_tma(hopper_configs.HOPPER_WIDE, 1000) == hopper_configs.HOPPER_WIDE
    finally:
        select_config.cache_clear()


def test_a_tuned_shape_is_used_on_its_device(monkeypatch):
    monkeypatch.setattr(mm_configs, "device_info", lambda device: H100)
    select_config.cache_clear()  # choices cached for another device name must not answer here
    try:
        table = load_tuned("NVIDIA H100 80GB HBM3")
        (n, k), buckets = next(iter(table.items()))
        assert select_config(1, n, k, torch.device("cuda")) == pick_bucket(buckets, 1)
    finally:
        select_config.cache_clear()  # nor leak into later tests


@pytest.mark.parametrize("m", [1, 16, 17, 64, 100, 128, 1000, 5000])
def test_heuristic_tiles_are_valid(m):
    cfg = heuristic_config(m, 4096, 4096)
    assert cfg.block_m >= 16 and cfg.block_m & (cfg.block_m - 1) == 0


def test_hopper_rules_count_the_devices_own_sms(monkeypatch):
    """The wave count uses the GPU's SMs: 120 tiles fit one wave of 132 SMs, not of 114."""
    select_config.cache_clear()
    try:
        cuda = torch.device("cuda")
        monkeypatch.setattr(mm_configs, "device_info", lambda device: H100)
        on_132 = select_config(1024, 3840, 3584, cuda)
        select_config.cache_clear()
        monkeypatch.setattr(mm_configs, "device_info", lambda device: H100_PCIE)
        on_114 = select_config(1024, 3840, 3584, cuda)
        assert on_132 == hopper_configs.hopper_config(1024, 3840, 3584, 132) == hopper_configs.HOPPER_WIDE
        assert on_114 == hopper_configs.hopper_config(1024, 3840, 3584, 114) != on_132
    finally:
        select_config.cache_clear()
