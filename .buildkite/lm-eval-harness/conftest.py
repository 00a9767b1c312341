"""Options of the lm-eval accuracy harness, as in vLLM: one test per config in --config-list-file."""

from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--config-list-file",
        action="store",
        help="text file listing eval config YAMLs, one per line, relative to the list file",
    )
    parser.addoption("--tp-size", action="store", default="1", help="tensor-parallel size (this backend: 1)")


@pytest.fixture(scope="package")
def tp_size(request) -> int:
    return int(request.config.getoption("--tp-size"))


def pytest_generate_tests(metafunc):
    if "config_filename" not in metafunc.fixturenames:
        return
    list_file = metafunc.config.getoption("--config-list-file")
    if not list_file:
        raise pytest.UsageError("--config-list-file is required")
    list_path = Path(list_file).resolve()
    names = [line.strip() for line in list_path.read_text().splitlines()]
    configs = [list_path.parent / name for name in names if name and not name.startswith("#")]
    metafunc.parametrize("config_filename", configs, ids=[c.stem for c in configs])
