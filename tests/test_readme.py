"""The README's Python snippet runs as written (on CPU here, on the GPU where there is one)."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_snippet_runs():
    (snippet,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch.Size([2, 7, 768])" in done.stdout


def test_the_readme_stays_a_product_page():
    """Short, and no history: how the numbers got there lives in docs/ and the CHANGELOG."""
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    for diary in ("session", "today", "last time", "of the day", " → "):  # before → after arrows
        assert diary not in text.lower(), diary
