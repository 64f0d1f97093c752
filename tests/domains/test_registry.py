"""The domain registry: flowevo's domains register themselves lightly, a third party's domain (at run time or
through an entry point) trains and optimises through the unchanged workflows, and conflicts are clear errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rings_plugin

from flowevo.config import load_config
from flowevo.domains import (
    Builtin,
    Domain,
    builtins,
    discover,
    domain_for_data,
    domain_for_model,
    domains,
    get_domain,
    register_domain,
    unregister_domain,
)
from flowevo.workflows import run_optimize, run_train

SRC = Path(__file__).resolve().parents[2] / "src" / "flowevo"


@pytest.fixture
def registry():
    """Domains registered during a test are removed after it."""
    before = set(domains())
    yield
    for name in set(domains()) - before:
        unregister_domain(name)


def test_own_domains_register_without_heavy_imports():
    code = ("import sys; from flowevo.domains import domains, builtins; d = domains(); b = builtins(); "
            "print(sorted(d), len(b), sorted(m for m in ('torch', 'pymatgen', 'chgnet', 'smact') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    assert out.startswith("['crystals', 'digits', 'external', 'generic']") and out.endswith(" []"), out
    names = builtins()
    assert {"distance_to_source", "target_probability", "digits.thickness", "crystals.budget"} <= set(names)
    assert all(n.startswith(f"{d.name}.") for d in domains().values() if d.name != "generic" for n in d.builtins)
    assert get_domain("generic").load_run is not None and get_domain("digits").load_run is None


def test_digit_morphometric_builtins_match_the_measurements():
    from flowevo.domains.digits import METRICS
    from flowevo.domains.digits.registration import MORPHOMETRICS

    assert tuple(METRICS) == MORPHOMETRICS


def test_model_and_data_lookup(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ValueError, match=r"not a flowevo model folder.*crystals: crystal_flow.pt; external: "
                                         r"path/to/file.py:factory \(your own flow\); generic: model.json"):
        domain_for_model(tmp_path / "m")
    assert domain_for_model(tmp_path / "their_flow.py:factory").name == "external"  # a factory, not a folder
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        domain_for_model(tmp_path / "nope")
    (tmp_path / "m" / "model.json").write_text("{}")
    assert domain_for_model(tmp_path / "m").name == "generic"
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 2)))
    (tmp_path / "c.csv").write_text(",material_id,cif,heat_ref\n")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    assert domain_for_data(tmp_path / "d.npz").name == "generic"
    assert domain_for_data(tmp_path / "c.csv").name == "crystals"
    with pytest.raises(ValueError, match=r"t.csv: no domain trains on this file.*a cif column"):
        domain_for_data(tmp_path / "t.csv")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        domain_for_data(tmp_path / "missing.npz")


def test_conflicts_and_bad_registrations_are_errors(registry):
    fn = Builtin(lambda ctx: None, "min", "other", "x")
    with pytest.raises(ValueError, match="already registered by domain 'generic'"):
        register_domain(Domain("dup", {"distance_to_source": fn}))
    with pytest.raises(ValueError, match="'generic' is already registered"):
        register_domain(Domain("generic"))
    with pytest.raises(ValueError, match="both recognises_model and load_run"):
        Domain("half", load_run=lambda r: None)
    with pytest.raises(TypeError, match="not a Builtin"):
        Domain("bad", {"bad.x": lambda ctx: None})
    with pytest.raises(ValueError, match="unknown domain 'nope'"):
        get_domain("nope")
    assert "dup" not in domains()


def _rings_data(tmp_path: Path) -> tuple[Path, Path]:
    data, sources = tmp_path / "train.rings", tmp_path / "sources.rings"
    np.savetxt(data, rings_plugin.make_rings(600))
    np.savetxt(sources, rings_plugin.make_rings(8, seed=1)[::2])  # ring 0 only
    return data, sources


def test_a_third_party_domain_trains_and_optimises_through_the_workflows(tmp_path, registry):
    register_domain(rings_plugin.DOMAIN)
    data, sources = _rings_data(tmp_path)
    summary = run_train(load_config(flags={"train.data": str(data), "train.out": str(tmp_path / "model"),
                                           "train.steps": 300}), show_progress=False)
    assert summary["kind"] == "rings" and (tmp_path / "model" / rings_plugin.CHECKPOINT).is_file()
    resolved = json.loads((tmp_path / "model" / "config.resolved.json").read_text())
    assert resolved["train"]["steps"] == 300 and (tmp_path / "model" / "training.png").is_file()
    config = load_config(flags={
        "optimize.model": str(tmp_path / "model"), "optimize.sources": str(sources), "optimize.target": {"class": 1},
        "optimize.generations": 4, "optimize.population": 8, "optimize.run_dir": str(tmp_path / "run"),
        "optimize.report": False, "optimize.constraints": [{"use": "rings.radius_error", "name": "off_ring", "upper": 1.0}],
    })
    metrics = run_optimize(config, show_progress=False)  # objectives: the domain's defaults
    assert [o["name"] for o in metrics["objectives"]] == ["rings.radius_error", "distance_to_source"]
    assert [o["role"] for o in metrics["objectives"]] == ["alignment", "preservation"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["domain"] == "rings"
    edits = np.loadtxt(tmp_path / "run" / "edits.csv", delimiter=",", skiprows=1)
    assert edits.shape == (4, 3)
    # sources sit on radius 1; their best edits under ring 1 should sit near radius 3
    assert np.abs(np.linalg.norm(edits[:, :2], axis=1) - 3.0).mean() < 0.5, edits
    assert metrics["rows_feasible"] == 1.0


def test_entry_points_register_installed_plugins(tmp_path, registry, monkeypatch):
    dist = tmp_path / "rings_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rings-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[flowevo.domains]\nrings = rings_plugin:DOMAIN\n"
                                           "broken = rings_plugin:NOT_THERE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "rings" not in domains()
    with pytest.warns(RuntimeWarning, match="'broken'"):
        discover(force=True)
    assert get_domain("rings") is rings_plugin.DOMAIN and "rings.radius_error" in builtins()
    model = tmp_path / "m"
    model.mkdir()
    (model / rings_plugin.CHECKPOINT).write_bytes(b"")
    assert domain_for_model(model).name == "rings"


def test_workflows_and_config_name_no_domain():
    words = re.compile(r"crystal|digits|generic|kind ==")
    for folder in ("workflows", "config"):
        for path in sorted((SRC / folder).glob("*.py")):
            hits = [f"{path.name}:{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1)
                    if words.search(line)]
            assert not hits, hits
