"""`platform.env_reader`: the hot paths' environment reads follow every change os.environ sees."""

import os

from vllm_int8.platform import env_reader

NAME = "VLLM_INT8_TEST_ENV_READER"


def test_env_reader_follows_os_environ(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    read = env_reader(NAME)
    assert read() is None
    monkeypatch.setenv(NAME, "0")
    assert read() == "0" == os.environ.get(NAME)
    os.environ[NAME] = "triton"
    assert read() == "triton"
    del os.environ[NAME]
    assert read() is None


def test_env_reader_without_os_environ_internals(monkeypatch):
    monkeypatch.setattr(os, "environ", {NAME: "1"})  # a mapping without _data: plain get
    read = env_reader(NAME)
    assert read() == "1"
    os.environ[NAME] = "0"
    assert read() == "0"
