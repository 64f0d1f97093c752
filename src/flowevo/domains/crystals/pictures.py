"""Small pictures of crystal cells for reports: the unit cell drawn in 2-D, atoms coloured by element.

:func:`draw_cell` draws one pymatgen Structure as a PNG: an oblique (cabinet) projection of the unit cell
with its 12 lattice edges, every atom at its position (atoms on a cell face, edge or corner are drawn at
each periodic image on the cell, as in VESTA's default view), coloured by element (VESTA's colour
scheme, shipped with pymatgen), sized by atomic radius, the back drawn first; the **marked** sites get a
magenta ring (a colour no common element has in the scheme). A legend under the cell names the elements
in their colours.

:func:`changed_sites` says which sites of a source and of its edit differ (A and B by element; the three
anion sites as a multiset, as :func:`~.validity.sites_changed` counts them), and :func:`draw_edit_pictures`
draws each source and edit with those sites marked, next to their CIFs.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MARK", "changed_sites", "draw_cell", "draw_edit_pictures", "element_colour"]

MARK = "#e6007e"  # the ring around changed sites
_DEPTH = (0.45 * np.cos(np.pi / 6), 0.45 * np.sin(np.pi / 6))  # cabinet projection of the y axis
_FACE = 0.02  # fractional distance from a face within which an atom is drawn on both faces


@lru_cache(maxsize=1)
def _colours() -> dict[str, tuple[float, float, float]]:
    import pymatgen.core
    from monty.serialization import loadfn

    scheme = loadfn(str(Path(pymatgen.core.__file__).parent / "ElementColorSchemes.yaml"))["VESTA"]
    return {el: tuple(c / 255 for c in rgb) for el, rgb in scheme.items()}


def element_colour(symbol: str) -> tuple[float, float, float]:
    """VESTA's RGB colour (0..1) of an element; grey for one the scheme lacks."""
    return _colours().get(symbol, (0.6, 0.6, 0.6))


@cache
def _radius(symbol: str) -> float:
    from pymatgen.core import Element

    try:
        r = Element(symbol).atomic_radius
        return float(r) if r is not None else 1.4
    except ValueError:
        return 1.4


def _symbols(s: Any) -> list[str]:
    return [sp.symbol for sp in s.species]


def changed_sites(source: Any, edit: Any) -> tuple[list[bool], list[bool]]:
    """``(changed sites of source, changed sites of edit)`` for canonical [A, B, X, X, X] Structures (or
    symbol lists): A and B where the element differs; anion sites whose element is not matched in the other
    crystal's anion multiset (so SrTiO3 -> SrTiO2F marks one O of the source and the F of the edit).

    Raises:
        ValueError: the two do not have the same number of sites.
    """
    a = _symbols(source) if hasattr(source, "species") else [str(e) for e in source]
    b = _symbols(edit) if hasattr(edit, "species") else [str(e) for e in edit]
    if len(a) != len(b):
        raise ValueError(f"source has {len(a)} sites, edit {len(b)}")
    head = min(2, len(a))
    ca, cb = [a[i] != b[i] for i in range(head)], [a[i] != b[i] for i in range(head)]

    def unmatched(mine: list[str], other: list[str]) -> list[bool]:
        left, out = Counter(other), []
        for e in mine:
            out.append(left[e] <= 0)
            left[e] -= 1
        return out

    return ca + unmatched(a[head:], b[head:]), cb + unmatched(b[head:], a[head:])


def _project(cart: np.ndarray) -> np.ndarray:
    """Cartesian ``(N, 3)`` -> drawing coordinates ``(N, 2)`` (x right, z up, y into the page)."""
    return np.stack([cart[:, 0] + _DEPTH[0] * cart[:, 1], cart[:, 2] + _DEPTH[1] * cart[:, 1]], axis=1)


def _images(frac: np.ndarray) -> list[np.ndarray]:
    """Every periodic image of a wrapped fractional position that lies on the cell (faces, edges, corners)."""
    shifts = [[0.0, 1.0] if f < _FACE else ([-1.0, 0.0] if f > 1 - _FACE else [0.0]) for f in frac]
    return [frac + np.array(s) for s in itertools.product(*shifts)]


def draw_cell(structure: Any, path: str | Path, marked: Sequence[bool] = (), title: str | None = None,
              size: float = 1.5, dpi: int = 150, figure: Any = None) -> Path:
    """Draw ``structure``'s unit cell as a PNG (see the module doc); returns ``path``.

    Args:
        structure: a pymatgen Structure.
        path: the PNG to write.
        marked: per site, True to ring it in magenta (e.g. :func:`changed_sites`); empty: none.
        title: a line above the cell (default: the reduced formula).
        size: width and height in inches (``size * dpi`` pixels).
        dpi: resolution.
        figure: a matplotlib Figure to draw on (cleared first; reusing one saves time when drawing many);
            default a new one, closed afterwards.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import CircleCollection, LineCollection
    from matplotlib.transforms import IdentityTransform

    lat = structure.lattice.matrix
    corners = np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)
    edges = [(i, j) for i, j in itertools.combinations(range(8), 2) if np.abs(corners[i] - corners[j]).sum() == 1]
    cp = _project(corners @ lat)
    frac, symbols, marks = [], [], []
    for k, site in enumerate(structure):
        for f in _images(np.mod(site.frac_coords, 1.0)):
            frac.append(f)
            symbols.append(site.specie.symbol)
            marks.append(bool(marked[k]) if len(marked) else False)
    cart = np.asarray(frac) @ lat
    order = np.argsort(-cart[:, 1], kind="stable")  # the back (large y) first
    xy = _project(cart)[order]
    symbols = [symbols[i] for i in order]
    marks = np.asarray(marks, dtype=bool)[order]
    span = max(float(np.ptp(cp[:, 0])), float(np.ptp(cp[:, 1])), 1e-6)

    # the drawing (centred, 1.24 x the cell's extent) fills the square [0.02, 0.98] x [0.14, 0.88] of the figure
    # (figure fractions); atoms and lines are figure-level artists (no Axes: drawing many cells stays fast)
    centre, half = np.array([cp[:, 0].mean(), cp[:, 1].mean()]), 0.62 * span
    box = np.array([0.02, 0.14]), np.array([0.96, 0.74])
    to_fig = lambda p: box[0] + box[1] * (p - centre + half) / (2 * half)  # noqa: E731
    fig = figure if figure is not None else plt.figure(figsize=(size, size), dpi=dpi)
    fig.clear()
    fig.set_size_inches(size, size)
    back = [corners[i][1] == 1 and corners[j][1] == 1 for i, j in edges]
    fig.add_artist(LineCollection([to_fig(cp[[i, j]]) for i, j in edges], colors="0.35", linewidths=0.8,
                                  linestyles=[":" if b else "-" for b in back], transform=fig.transFigure, zorder=1))
    points_per_unit = 0.74 * size * 72 / (2 * half)  # points per Angstrom of the drawing
    diam = np.array([(0.35 + 0.3 * _radius(e)) * points_per_unit for e in symbols])  # compressed: O stays visible
    offsets = to_fig(xy)
    fig.add_artist(CircleCollection(diam**2, offsets=offsets, offset_transform=fig.transFigure,
                                    transform=IdentityTransform(), facecolors=[element_colour(e) for e in symbols],
                                    edgecolors="0.2", linewidths=0.5, zorder=2))
    if marks.any():
        fig.add_artist(CircleCollection((diam[marks] + 7) ** 2, offsets=offsets[marks],
                                        offset_transform=fig.transFigure, transform=IdentityTransform(),
                                        facecolors="none", edgecolors=MARK, linewidths=2.0, zorder=3))
    fig.text(0.5, 0.97, title if title is not None else structure.composition.reduced_formula, ha="center", va="top",
             fontsize=7.5)
    elements = sorted(set(symbols), key=lambda e: -_radius(e))
    step = 1.0 / (len(elements) + 1)
    for n, el in enumerate(elements):
        fig.text(step * (n + 1), 0.03, el, ha="center", va="bottom", fontsize=7, fontweight="bold",
                 bbox={"boxstyle": "round,pad=0.15", "fc": element_colour(el), "ec": "0.4", "lw": 0.4})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    if figure is None:
        plt.close(fig)
    return path


def draw_edit_pictures(directory: str | Path, sources: Sequence[Any], edits: Sequence[Any]
                       ) -> tuple[list[str], list[str | None]]:
    """``directory/source_<i>.png`` and ``directory/edit_<i>.png`` (where ``edits[i]`` is not None), the changed
    sites ringed on both; returns the file names (``None`` where there is no edit)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    src_names: list[str] = []
    edit_names: list[str | None] = []
    fig = plt.figure()
    try:
        for i, (s, e) in enumerate(zip(sources, edits)):
            ms, me = changed_sites(s, e) if e is not None and len(e) == len(s) else ([], [])
            draw_cell(s, directory / f"source_{i}.png", ms, figure=fig)
            src_names.append(f"source_{i}.png")
            if e is None:
                edit_names.append(None)
                continue
            draw_cell(e, directory / f"edit_{i}.png", me, figure=fig)
            edit_names.append(f"edit_{i}.png")
    finally:
        plt.close(fig)
    return src_names, edit_names
