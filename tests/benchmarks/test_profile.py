"""Profile summary: stage shares of the decode path come from the profiler's own records."""

from flowevo.benchmarks.profile import profile_decode, profile_tables


def test_decode_profile_attributes_time_to_velocity_and_linear_layers():
    p = profile_decode(batch=16, repeats=1, top=5)
    velocity, linear = p["stages"]["velocity calls"], p["stages"]["of which linear layers (MKL GEMM)"]
    assert 0 < linear["s"] <= velocity["s"] <= p["wall_s"] and velocity["share"] <= 1
    assert any("linear" in t["function"] for t in p["top"]) and len(p["top"]) == 5
    assert "| velocity calls |" in profile_tables({"profiles": {"decode": p}})
