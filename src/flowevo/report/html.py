"""Static HTML reports: sections of text, tables and images, opened from disk without a server."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem} th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left} img{max-width:100%;border:1px solid #eee;margin:.4rem 0}
.note{color:#555;font-size:.9rem} pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem}
figure{margin:.8rem 0} nav{font-size:.9rem;margin:.6rem 0} nav a{margin-right:.8rem}
.nowrap td{white-space:nowrap} .scroll{overflow-x:auto;max-width:100%}
table.compact{font-size:.8rem} table.compact td,table.compact th{padding:.2rem .35rem;vertical-align:middle}
table.compact td,table.compact th{text-align:center} td .sub{display:block;color:#666;font-size:.75rem}
img.thumb{width:110px;height:110px;border:0;margin:0 auto;display:block}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "–"
    return str(v)


@dataclass
class Report:
    """Build a report section by section, then :meth:`write` it as one ``report.html``.

    Example:
        >>> r = Report("toy run")
        >>> r.text("Edits of 24 samples.")
        >>> r.table([{"method": "reo", "acc": 1.0}])
        >>> "reo" in r.render()
        True
    """

    title: str
    parts: list[str] = field(default_factory=list)
    toc: bool = False  # a list of links to the sections under the title
    sections: list[tuple[str, str]] = field(default_factory=list)

    def section(self, heading: str, anchor: str | None = None) -> None:
        """A new section; ``anchor`` (default: a slug of the heading) becomes its HTML id."""
        slug = anchor or re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
        self.sections.append((heading, slug))
        self.parts.append(f'<h2 id="{html.escape(slug)}">{html.escape(heading)}</h2>')

    def text(self, text: str, note: bool = False) -> None:
        """A paragraph (escaped); ``note``: smaller, grey."""
        cls = ' class="note"' if note else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, rows: Sequence[dict[str, Any]], links: dict[str, str] | None = None, nowrap: bool = False,
              images: dict[str, str] | None = None, notes: dict[str, str] | None = None, compact: bool = False) -> None:
        """Rows of dicts sharing keys; ``links`` maps a column to a key holding a relative href; ``images`` maps
        a column to a key holding a relative image path, shown small above the cell's text (and linked with
        it); ``notes`` maps a column to a key holding a second, smaller line of the cell; ``nowrap`` keeps each
        cell on one line (e.g. vectors); ``compact``: smaller type and padding, cells centred. A table wider
        than the page scrolls inside its own box, so the page never is cut off."""
        if not rows:
            return
        hidden = set((links or {}).values()) | set((images or {}).values()) | set((notes or {}).values())
        cols = [c for c in rows[0] if c not in hidden]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = []
        for row in rows:
            cells = []
            for c in cols:
                val = html.escape(_fmt(row.get(c)))
                if images and c in images and row.get(images[c]):
                    val = f'<img class="thumb" src="{html.escape(str(row[images[c]]))}" alt="{val}">{val}'
                if links and c in links and row.get(links[c]):
                    val = f'<a href="{html.escape(str(row[links[c]]))}">{val}</a>'
                if notes and c in notes and row.get(notes[c]) is not None:
                    val += f'<span class="sub">{html.escape(_fmt(row[notes[c]]))}</span>'
                cells.append(f"<td>{val}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        classes = " ".join(c for c, on in (("nowrap", nowrap), ("compact", compact)) if on)
        cls = f' class="{classes}"' if classes else ""
        table = f"<table{cls}><tr>{head}</tr>{''.join(body)}</table>"
        self.parts.append(f'<div class="scroll">{table}</div>')

    def image(self, relative_path: str, caption: str = "") -> None:
        """An image by its path relative to ``report.html``, with a caption."""
        self.parts.append(f'<figure><img src="{html.escape(relative_path)}" alt="{html.escape(caption)}">'
                          f"<figcaption class=\"note\">{html.escape(caption)}</figcaption></figure>")

    def json(self, obj: Any) -> None:
        """``obj`` as indented JSON in a preformatted block."""
        self.parts.append(f"<pre>{html.escape(json.dumps(obj, indent=2, default=str))}</pre>")

    def render(self) -> str:
        """The whole page as one HTML string (inline CSS, no scripts)."""
        nav = ""
        if self.toc and self.sections:
            nav = "<nav>" + "".join(f'<a href="#{html.escape(a)}">{html.escape(h)}</a>' for h, a in self.sections) + "</nav>"
        return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}</title>"
                f"<style>{CSS}</style></head><body><h1>{html.escape(self.title)}</h1>{nav}{''.join(self.parts)}</body></html>")

    def write(self, run_dir: Path | str) -> Path:
        """Write ``run_dir/report.html``; returns its path."""
        path = Path(run_dir) / "report.html"
        path.write_text(self.render(), encoding="utf-8")
        return path
