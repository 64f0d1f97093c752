"""The README's Python tour runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write relative paths (runs/cfo)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python blocks"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["result"].history[-1].generation == 10


def test_readme_first_screen_has_the_two_commands():
    head = README.read_text().split("---")[0]
    assert "make demo" in head and "make test" in head
    assert "make test" in (README.parent / ".ci" / "run").read_text()
