"""A demo run killed with SIGKILL mid-way and resumed ends with the same results as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch
from typer.testing import CliRunner

from flowevo.cli import app

ARGS = ["demo", "toy", "--generations", "40", "--seed", "3", "--quiet", "--json"]


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "flowevo.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert _cli(*ARGS, "--run-dir", str(full)).wait(timeout=600) == 0

    proc = _cli(*ARGS, "--run-dir", str(killed), start_new_session=True)
    ckpt = killed / "checkpoint.pt"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once a few generations are checkpointed
        try:
            if torch.load(ckpt, weights_only=True)["state"]["generation"] >= 3:
                break
        except Exception:  # not written yet (or being replaced)
            pass
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it was killed"

    res = subprocess.run([sys.executable, "-m", "flowevo.cli", "resume", str(killed), "--quiet", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    a, b = np.load(full / "edits.npz"), np.load(killed / "edits.npz")
    for key in a.files:
        assert np.array_equal(a[key], b[key]), key
    ma, mb = json.loads((full / "metrics.json").read_text()), json.loads((killed / "metrics.json").read_text())
    for key in ("evaluations", "final_mean_best", "final_hypervolume", "generations"):
        assert ma[key] == mb[key]


def test_resume_errors_exit_2(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["resume", str(tmp_path)])
    assert out.exit_code == 2 and "config.json" in out.output
    (tmp_path / "config.json").write_text(json.dumps({"demo": "toy", "seed": 0, "rows": 2, "generations": 2,
                                                      "device": "cpu"}))
    (tmp_path / "model.pt").write_bytes(b"garbage")
    out = runner.invoke(app, ["resume", str(tmp_path)])
    assert out.exit_code == 2 and "model.pt" in out.output
