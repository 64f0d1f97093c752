"""The digits benchmark end to end on a few digits: every key the issue lists, fronts, ablation, files."""

import itertools
import json

import numpy as np
import pytest

from flowevo.benchmarks.digits import LEAP_GAMMAS, REO_TAUS, compare_fronts, run_digits_benchmark

METHOD_KEYS = {"acc", "acc_independent", "mean_p_target", "morph_rel_change", "slant_abs_change", "diversity",
               "evaluations", "wall_s"}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    m = run_digits_benchmark(out, n=6, seed=3, population=6, generations=2, ablation_seeds=2, log=lambda s: None)
    return out, m


def test_metrics_have_every_key_the_issue_lists(small_run):
    out, m = small_run
    assert json.loads((out / "metrics.json").read_text())["n_sources"] == 6
    assert set(m["methods"]) == {"reo", "leap", "gradient", "cma", "random", "swap"}
    for name, r in m["methods"].items():
        assert METHOD_KEYS <= set(r), name
        assert set(r["morph_rel_change"]) == {"area", "length", "thickness", "slant", "width", "height"}
        assert 0 <= r["acc"] <= 1 and 0 <= r["acc_independent"] <= 1
    assert 6 * 3 - 8 < m["methods"]["reo"]["evaluations"] <= 6 * 3  # the budget, in whole REO generations of 8
    assert m["methods"]["reo"]["diversity"]["sources_with_several"] >= 1  # REO keeps a set per digit
    assert m["methods"]["leap"]["diversity"]["pixel"] is None  # one solution per digit
    assert [p["setting"] for p in m["fronts"]["leap"]] == list(LEAP_GAMMAS)
    assert [p["setting"] for p in m["fronts"]["reo"]] == list(REO_TAUS)
    for pts in m["fronts"].values():
        assert all({"setting", "acc", "mean_p_target", "acc_independent", "morph_mean"} <= set(p) for p in pts)
    assert set(m["fidelity"]) >= {"residual_class_probe_acc", "swap_morph_rel_change", "roundtrip_rel_error"}
    assert len(m["fronts_comparison"]) == len(LEAP_GAMMAS) and m["no_edit"]["acc"] <= 1


def test_reo_front_is_monotone_in_tau_and_the_ablation_has_seeds(small_run):
    _, m = small_run
    reo = m["fronts"]["reo"]
    # a higher tau keeps a subset of the candidates: never a smaller change, never a lower confidence
    assert all(a["mean_p_target"] <= b["mean_p_target"] + 1e-9 for a, b in itertools.pairwise(reo))
    assert set(m["ablation"]) == {"self_only", "cross_only", "both", "both_any_donor"}
    for a in m["ablation"].values():
        assert len(a["runs"]) == 2 and {"mean", "std"} <= set(a["summary"]["morph_mean"])
    both = m["ablation"]["both"]["runs"][0]
    assert both["morph_mean"] == m["methods"]["reo"]["morph_mean"]  # the main run is the first 'both' seed


def test_compare_fronts_matches_confidence():
    fronts = {"leap": [{"setting": 0.3, "mean_p_target": 0.88, "morph_mean": 0.16},
                       {"setting": 1.0, "mean_p_target": 0.99, "morph_mean": 0.24}],
              "reo": [{"setting": 0.5, "mean_p_target": 0.87, "morph_mean": 0.10},
                      {"setting": 0.9, "mean_p_target": 0.95, "morph_mean": 0.17}]}
    c = compare_fronts(fronts)
    assert c[0]["reo_morph_at_p_or_more"] == 0.17 and c[0]["reo_lower"] is False  # the 0.87 point is less confident
    assert c[1]["reo_morph_at_p_or_more"] is None and c[1]["reo_lower"] is None
    fronts["leap"][0]["mean_p_target"] = 0.47  # below every REO point: mix REO's 0.87 point with no edit (p 0.07)
    c = compare_fronts(fronts, {"mean_p_target": 0.07, "morph_mean": 0.0})
    assert c[0]["reo_mix_share"] == pytest.approx(0.5) and c[0]["reo_mix_morph"] == pytest.approx(0.05)
    assert "reo_mix_morph" not in c[1]


def test_edits_npz_and_plots(small_run):
    out, _ = small_run
    e = np.load(out / "edits.npz")
    assert {"sources", "targets", "edits_reo", "edits_leap", "edits_gradient", "edits_cma", "edits_random",
            "edits_swap"} <= set(e.files)
    assert e["edits_reo"].dtype == np.uint8 and e["edits_reo"].shape == (6, 28, 28)
    assert (out / "fronts.png").stat().st_size > 0 and (out / "examples.png").stat().st_size > 0
