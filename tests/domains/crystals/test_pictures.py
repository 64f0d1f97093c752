"""Pictures of crystal cells: the changed sites are the ones that changed, drawn in the element colours, ringed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymatgen")

from flowevo.domains.crystals.pictures import MARK, changed_sites, draw_cell, draw_edit_pictures, element_colour  # noqa: E402


def _pixels(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)


def _has(pixels, rgb, tol=12):
    return bool((np.abs(pixels - np.array(rgb)).max(axis=1) <= tol).any())


def test_changed_sites_count_anions_as_a_multiset(perovskite):
    src = perovskite("Sr", "Ti", ("O", "O", "O"))
    assert changed_sites(src, perovskite("Sr", "Ti", ("O", "O", "O"))) == ([False] * 5, [False] * 5)
    assert changed_sites(src, perovskite("Ba", "Ti", ("O", "F", "O"))) == (
        [True, False, False, False, True], [True, False, False, True, False])  # A, then one O -> F
    # anions reordered: nothing changed; B changed: only B
    assert changed_sites(["Sr", "Ti", "O", "N", "F"], ["Sr", "Zr", "F", "O", "N"]) == (
        [False, True, False, False, False], [False, True, False, False, False])
    with pytest.raises(ValueError, match="sites"):
        changed_sites(["Sr", "Ti"], ["Sr", "Ti", "O"])


def test_draw_cell_colours_elements_and_rings_only_marked_sites(tmp_path, perovskite):
    s = perovskite("Sr", "Ti", ("O", "O", "O"))
    plain = draw_cell(s, tmp_path / "plain.png")
    marked = draw_cell(s, tmp_path / "marked.png", [True, False, False, False, False], title="SrTiO3 (A changed)")
    from PIL import Image

    assert Image.open(plain).size == (225, 225)
    a, b = _pixels(plain), _pixels(marked)
    mark = tuple(int(MARK[i:i + 2], 16) for i in (1, 3, 5))
    for el in ("Sr", "Ti", "O"):
        assert _has(a, [int(255 * c) for c in element_colour(el)]), el
    assert not _has(a, mark) and _has(b, mark)
    assert element_colour("Sr") != element_colour("O") and element_colour("Xx") == (0.6, 0.6, 0.6)


def test_draw_edit_pictures_names_what_it_drew(tmp_path, perovskite):
    src = [perovskite("Sr", "Ti"), perovskite("Ba", "Zr")]
    names = draw_edit_pictures(tmp_path, src, [perovskite("Ca", "Ti"), None])
    assert names == (["source_0.png", "source_1.png"], ["edit_0.png", None])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edit_0.png", "source_0.png", "source_1.png"]
    mark = tuple(int(MARK[i:i + 2], 16) for i in (1, 3, 5))
    assert _has(_pixels(tmp_path / "edit_0.png"), mark) and not _has(_pixels(tmp_path / "source_1.png"), mark)
