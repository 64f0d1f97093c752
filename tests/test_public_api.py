"""The curated public API: ``import flowevo`` is light, gives the README tour's names, and every ``__all__`` resolves."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import flowevo

README = Path(__file__).resolve().parents[1] / "README.md"
PACKAGES = ["flowevo", "flowevo.domains", "flowevo.domains.generic", "flowevo.domains.digits", "flowevo.domains.toy",
            "flowevo.domains.crystals"]


def test_import_flowevo_loads_no_heavy_module():
    code = ("import sys, flowevo, flowevo.domains.crystals, flowevo.domains.digits, flowevo.domains.generic; "
            "print(sorted(m for m in ('torch', 'numpy', 'pymatgen', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out


def test_readme_core_names_come_from_flowevo():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    imported = {(m, n.strip()) for block in blocks
                for m, names in re.findall(r"^from flowevo\.([\w.]+) import ([\w, ]+)$", block, flags=re.MULTILINE)
                for n in names.split(",")}
    core = {(m, n) for m, n in imported if not m.startswith("domains")}
    assert {n for _, n in core} >= {"Condition", "EditTask", "Evolver", "FunctionObjective", "LagrangianPenalty",
                                    "load_config", "run_optimize", "CFOConfig"}
    for module, name in sorted(core):
        assert name in flowevo.__all__, name
        assert getattr(flowevo, name) is getattr(importlib.import_module(f"flowevo.{module}"), name), name
    for name in ("Codec", "VariationStrategy", "EditResult", "QueryCounter", "random_search", "cma_search", "leap",
                 "gradient_search", "ConstrainedFlowOptimiser", "FinetuneConfig", "ProcessPoolEvaluator",
                 "DaskEvaluator", "CachedEvaluator", "CommandObjective", "run_train", "resume_optimize"):
        assert name in flowevo.__all__, name


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package):
    if package.endswith("crystals"):
        pytest.importorskip("pymatgen")
    module = importlib.import_module(package)
    lazy = getattr(module, "_EXPORTS", None)
    if lazy is not None:  # the literal __all__ and the lazy table agree
        assert set(module.__all__) - {"__version__"} == set(lazy)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, missing
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018
