"""Progress bars go to stderr, so ``--json`` on stdout stays parseable."""

from flowevo.progress import progress_bar


def test_progress_bars_write_to_stderr_only(capsys, monkeypatch):
    monkeypatch.delenv("FLOWEVO_QUIET", raising=False)
    with progress_bar("working", total=2) as advance:
        advance(2, loss=0.5)
    out = capsys.readouterr()
    assert out.out == "" and "working" in out.err
