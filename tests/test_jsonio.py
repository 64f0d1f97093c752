"""Shared JSON helpers: a bad file is a ValueError naming it; written metrics are strict JSON."""

import doctest
import json

import numpy as np
import pytest

import flowevo.jsonio as jsonio
from flowevo.jsonio import read_json, strict_json


def test_read_json_names_the_bad_file(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"a": 1}')
    bad.write_text("{not json")
    assert read_json(good) == {"a": 1}
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        read_json(bad)


def test_strict_json_round_trips_without_nan():
    obj = strict_json({"x": [np.float64("inf"), np.float32(1.5)], "n": np.int32(3), 2: (np.bool_(False),)})
    assert json.loads(json.dumps(obj, allow_nan=False)) == {"x": [None, 1.5], "n": 3, "2": [False]}
    assert doctest.testmod(jsonio).failed == 0
