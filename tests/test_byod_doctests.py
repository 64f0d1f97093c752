"""The worked examples in the docstrings of the bring-your-own-data modules run as written."""

import doctest
import importlib

import pytest

MODULES = ["flowevo.domains.generic.data", "flowevo.domains.generic.encoder", "flowevo.domains.generic.judge",
           "flowevo.domains.generic.model", "flowevo.domains.generic.train", "flowevo.objectives.resolve",
           "flowevo.config.models", "flowevo.config.loading", "flowevo.config.flags"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0, result
