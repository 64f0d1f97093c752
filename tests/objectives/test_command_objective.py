"""CommandObjective: external programs that succeed, fail, hang or print garbage."""

from __future__ import annotations

import os
import pickle
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from flowevo.objectives import Candidates, CommandObjective, LocalEvaluator, parse_score

# Behaviour chosen by the candidate's first coordinate: 0 ok, 1 exit 1, 2 hang (with a child), 3 garbage.
SCRIPT = """
import json, subprocess, sys, time
import numpy as np
data = np.load(sys.argv[1])
x, mode = data["x"], int(round(float(data["x"][0])))
if mode == 1:
    print("boom", file=sys.stderr); sys.exit(1)
if mode == 2:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open(sys.argv[2], "w").write(str(child.pid))
    time.sleep(60)
if mode == 3:
    print("hello, not a score"); sys.exit(0)
print("some log line")
print(json.dumps({"score": float(x.sum()) + float(data["row"]), "extra": 1}))
"""


def _objective(tmp_path: Path, **kw) -> CommandObjective:
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCRIPT))
    argv = [sys.executable, str(script), "{input}", str(tmp_path / "child.pid")]
    return CommandObjective("ext", "min", argv, **{"timeout_s": 5.0, "max_parallel": 4, **kw})


def _batch(modes: list[int]) -> Candidates:
    x = torch.tensor([[float(m), 0.5, 0.25] for m in modes])
    return Candidates(x=x, source_index=torch.arange(len(modes)) * 10)


def test_command_success(tmp_path):
    ev = LocalEvaluator([_objective(tmp_path)])(_batch([0, 0, 0]))
    assert ev.failures == []
    torch.testing.assert_close(ev.values[:, 0], torch.tensor([0.75, 10.75, 20.75], dtype=torch.float64))


def test_command_failures_are_isolated_and_named(tmp_path):
    obj = _objective(tmp_path, timeout_s=3.0)
    t0 = time.monotonic()
    ev = LocalEvaluator([obj])(_batch([0, 1, 2, 3, 0]))
    elapsed = time.monotonic() - t0
    assert elapsed < 15  # the hang is cut at 3 s, the others ran concurrently
    assert ev.failed.tolist() == [False, True, True, True, False]
    torch.testing.assert_close(ev.values[[0, 4], 0], torch.tensor([0.75, 40.75], dtype=torch.float64))
    errors = {f.index: f.error for f in ev.failures}
    assert set(errors) == {1, 2, 3} and all(f.name == "ext" for f in ev.failures)
    assert errors[1].startswith("candidate 1 (row 10): exited with code 1") and "boom" in errors[1]
    assert errors[2].startswith("candidate 2 (row 20): timed out after 3 s")
    assert errors[3].startswith("candidate 3 (row 30): last stdout line is not JSON") and "hello" in errors[3]
    child = int((tmp_path / "child.pid").read_text())  # the hanging program's own child was killed too
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead: reaped by init, not by us
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_command_json_payload(tmp_path):
    script = tmp_path / "norm.py"
    script.write_text("import json, sys\nd = json.load(open(sys.argv[1]))\nprint(sum(v * v for v in d['x']) + d['index'])\n")
    obj = CommandObjective("norm", "min", [sys.executable, str(script), "{input}"], timeout_s=5.0, payload_format="json")
    out = obj(Candidates(x=torch.tensor([[1.0, 2.0], [3.0, 0.0]]), source_index=torch.zeros(2, dtype=torch.long)))
    torch.testing.assert_close(out, torch.tensor([5.0, 10.0], dtype=torch.float64))


def test_command_cif_payload(tmp_path):
    core = pytest.importorskip("pymatgen.core")
    s = core.Structure(core.Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    script = tmp_path / "cif.py"
    script.write_text("import sys\ntext = open(sys.argv[1]).read()\nprint(float('_cell_length_a' in text and 'Na' in text))\n")
    obj = CommandObjective("cif", "max", [sys.executable, str(script), "{input}"], timeout_s=5.0, payload_format="cif")
    batch = Candidates(x=torch.zeros(1, 3), source_index=torch.zeros(1, dtype=torch.long), extra={"structures": [s]})
    assert obj(batch).tolist() == [1.0]
    no_structures = LocalEvaluator([obj])(Candidates(x=torch.zeros(1, 3), source_index=torch.zeros(1, dtype=torch.long)))
    assert "needs Candidates.extra['structures']" in no_structures.failures[0].error


def test_command_objective_is_picklable_and_validated(tmp_path):
    obj = _objective(tmp_path)
    assert pickle.loads(pickle.dumps(obj)) == obj
    with pytest.raises(ValueError, match="no shell"):
        CommandObjective("x", "min", "python score.py {input}", timeout_s=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="{input}"):
        CommandObjective("x", "min", ["python", "score.py"], timeout_s=1.0)
    bad = CommandObjective("x", "min", ["/nonexistent/program", "{input}"], timeout_s=1.0)
    assert "could not start" in LocalEvaluator([bad])(_batch([0])).failures[0].error


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [("1.5", 1.5), ('{"score": 2}', 2.0), ("log line\n\n 3 \n", 3.0), ('{"score": -1e3, "other": "x"}', -1000.0)],
)
def test_parse_score(stdout, expected):
    assert parse_score(stdout) == expected


@pytest.mark.parametrize("stdout", ["", "hello", "true", '{"score": "1"}', '{"value": 1}', "NaN", "[1, 2]"])
def test_parse_score_rejects(stdout):
    with pytest.raises(ValueError):
        parse_score(stdout)
