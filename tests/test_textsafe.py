"""triage.textsafe: the one escaping layer for terminal, HTML and CSV (issue 11, defect 2)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from triage.textsafe import for_csv, for_html, for_terminal, terminal_line, visible
from triage.util import display_bytes

HOSTILE = ["[link=https://evil.example]x", "[/nonexistent]", "[bold red]s", ":smile:",
           "\x1b]0;t\x07", "\x1b]8;;u\x1b\\l\x1b]8;;\x1b\\", "\x1b[2J", "\x9b2J", "\u202e",
           "a\udcffb", "tab\there", "new\nline", "\u2028", "\ue000", "ok é 图"]


def _render(renderable: Text) -> str:
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, color_system="truecolor", width=200,
            highlight=False).print(renderable)
    return buf.getvalue()


@pytest.mark.parametrize("value", HOSTILE)
def test_terminal_text_is_never_markup_and_never_a_control(value: str) -> None:
    out = _render(terminal_line(("error:", "red"), " ", for_terminal(value)))
    body = out.split("\x1b[0m", 1)[1]          # after the styled "error:" prefix
    assert "\x1b" not in body and "\x07" not in body and "\x9b" not in body
    assert "\u202e" not in body and "\u2028" not in body and "\udcff" not in body
    assert "\U0001f604" not in body             # :smile: stays text, not an emoji
    assert body.rstrip("\n") == " " + visible(value)


def test_visible_escapes() -> None:
    assert visible("\x1b]0;t\x07") == "\\x1b]0;t\\x07"
    assert visible("\x9b") == "\\x9b" and visible("\u202e") == "\\u202e"
    assert visible("a\udcffb") == "a\\xffb" and visible("\ue000") == "\\ue000"
    assert visible("ok é 图 [x] \\") == "ok é 图 [x] \\"
    assert visible("a\nb") == "a\\x0ab" and visible("a\nb", keep_newlines=True) == "a\nb"
    assert visible(None) == "" and visible(3) == "3"


@pytest.mark.parametrize("raw", [b"a\x1b[2J.jpg", b"\xff\xfe", "\u202egpj.exe".encode(),
                                 b"a.zip!x.jpg", b"back\\x1b"])
def test_visible_leaves_display_paths_unchanged(raw: bytes) -> None:
    shown = display_bytes(raw)
    assert visible(shown) == shown


def test_html_and_csv() -> None:
    assert for_html('<a href="x">\x1b[2J') == "&lt;a href=&quot;x&quot;&gt;\\x1b[2J"
    assert for_csv("=1+2") == "'=1+2" and for_csv("\t=x") == "\\x09=x"
    assert for_csv("-1") == "'-1" and for_csv(True) == "1" and for_csv(None) == ""
    assert for_csv("\x1b]0;t\x07") == "\\x1b]0;t\\x07"


@pytest.mark.parametrize("cell", [" =1+2", "\u00a0=1+2", "\u3000@SUM(A1)", "\uff1d1+2",
                                  "\ufe66cmd", "  \uff0b1", "\uff0d1", "\uff20x"])
def test_csv_formula_behind_spaces_or_in_other_forms(cell):
    # Leading spaces (no-break and ideographic ones too) and the full-width and small
    # forms of = + - @ are guarded like the plain ones.
    assert for_csv(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["a=b", "IMG_0001.jpg", " x", "\u00a0", "", "100%"])
def test_csv_plain_cells_untouched(cell):
    assert for_csv(cell) == cell
