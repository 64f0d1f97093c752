"""Query-efficiency benchmark: summaries over seeds (the counting itself is tested in tests/objectives)."""

import math

from flowevo.benchmarks.query_efficiency import summarise


def test_summarise_medians_spread_and_ratio():
    per_seed = {"reo": [[2, 4], [4, 8], [6, math.inf]], "cma": [[8, 8], [16, 16], [8, 32]]}
    s = summarise(per_seed, budget=32, rates=(0.5, 1.0))
    assert s["methods"]["reo"]["median"] == {"0.5": 4, "1.0": 8} and s["methods"]["reo"]["max"]["1.0"] is None
    assert s["methods"]["cma"]["min"]["0.5"] == 8 and s["ratios"]["reo"]["cma"]["0.5"]["ratio"] == 0.5
    curve = s["methods"]["reo"]["curve_median"]
    assert all(a <= b for a, b in zip(curve, curve[1:])) and s["grid"][-1] == 32
