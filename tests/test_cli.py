"""The command line: help with examples, exit code 2 on usage errors, and the demos end to end."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from flowevo.cli import app

runner = CliRunner()


@pytest.mark.parametrize("cmd", [[], ["demo"], ["benchmark"], ["demo", "digits"], ["benchmark", "toy"]])
def test_help_shows_examples(cmd):
    out = runner.invoke(app, cmd + ["--help"])
    assert out.exit_code == 0 and "Example" in out.output


def test_usage_and_input_errors_exit_2_with_one_line():
    assert runner.invoke(app, ["demo", "toy", "--bogus"]).exit_code == 2
    out = runner.invoke(app, ["demo", "digits", "--device", "cuda:7"])
    assert out.exit_code == 2 and "CUDA" in out.output and "Traceback" not in out.output


def test_bad_sources_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "digits.npz"
    bad.write_text("not an npz")
    out = runner.invoke(app, ["demo", "digits", "--sources", str(bad), "--quiet", "--run-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and "digits.npz" in out.output and "Traceback" not in out.output


def test_query_benchmark_rejects_unknown_methods_and_bad_sources(tmp_path):
    out = runner.invoke(app, ["benchmark", "queries", "--out", str(tmp_path / "q"), "--methods", "reo,tabu"])
    assert out.exit_code == 2 and "--methods" in out.output and "Traceback" not in out.output
    bad = tmp_path / "digits.npz"
    bad.write_text("not an npz")
    out = runner.invoke(app, ["benchmark", "queries", "--out", str(tmp_path / "q"), "--sources", str(bad), "--quiet"])
    assert out.exit_code == 2 and "digits.npz" in out.output and "Traceback" not in out.output


def test_digits_demo_end_to_end(tmp_path):
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "flowevo.cli", "demo", "digits", "--run-dir", str(run), "--n", "3",
                          "--generations", "2", "--quiet", "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads(out.stdout)
    assert set(m["methods"]) == {"reo", "leap", "gradient", "cma", "random", "swap"}
    for f in ("report.html", "grid.png", "front.png", "fitness.png", "thickness.png", "metrics.json", "edits.npz"):
        assert (run / f).stat().st_size > 0, f
    html = (run / "report.html").read_text()
    assert "grid.png" in html and "Pareto" in html


def test_missing_weights_folder_is_a_clear_error(tmp_path):
    out = runner.invoke(app, ["demo", "digits", "--weights", str(tmp_path / "nope"), "--quiet",
                              "--run-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and "nope" in out.output and "Traceback" not in out.output
