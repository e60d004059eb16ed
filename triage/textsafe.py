"""Text from evidence and hash sets, made safe for where it is written: the one place.

Names, paths, volume labels, reasons and error messages that quote them, and hash-set
fields (set names, file names, VICS ``Category`` ...) are hostile input: a file named
``[link=https://evil.example]x.jpg`` must not become a hyperlink, ``\\x1b]0;...`` must not
retitle the examiner's terminal, ``=cmd|...`` must not run in a spreadsheet, ``<script>``
must not run in a browser. Every writer of such text calls one of:

* ``for_terminal(value)`` -> a ``rich.text.Text``: never parsed as console markup or emoji
  codes, so ``[...]`` is literal (no hyperlinks, no styles, no ``MarkupError``), and with
  ``visible`` escapes. Compose with ``terminal_line(("error:", "red"), " ", value)``.
* ``plain_terminal(value)`` -> ``str`` with the ``visible`` escapes (for ``typer.echo``).
* ``for_html(value)`` -> ``visible`` escapes, then ``html.escape(quote=True)``.
* ``for_csv(value)`` -> ``visible`` escapes, then a leading apostrophe on a cell a
  spreadsheet would evaluate (OWASP "CSV Injection").

``visible`` writes every character a terminal or viewer would act on or hide as a visible
escape: C0 controls and DEL (``\\x1b``), C1 controls (``\\x9b``, the one-byte CSI),
bidirectional controls and other format characters (``\\u202e``), line/paragraph
separators, private-use and unassigned code points, and lone surrogates (from
``surrogateescape``: ``\\xff`` for an undecodable byte). Backslashes are left alone, so
text already escaped by ``triage.util.display_bytes`` (display paths) is unchanged: it
is idempotent. JSON outputs need none of this: ``json.dumps(ensure_ascii=True)`` keeps the
exact data and writes every control character as ``\\u001b``.
"""

from __future__ import annotations

import html
import unicodedata

from rich.text import Text

#: Unicode categories escaped besides the controls: format (incl. the bidi overrides and
#: isolates U+202A-U+202E, U+2066-U+2069, and U+200E/U+200F, U+061C), line and paragraph
#: separators, private use, unassigned (Unicode 15, chapter 4.5 General Category).
_ESCAPED_CATEGORIES = frozenset(("Cf", "Zl", "Zp", "Co", "Cn", "Cs"))

#: First characters that make a spreadsheet evaluate a cell (OWASP CSV Injection), and the
#: whitespace controls some applications strip before looking.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _escape_char(ch: str, keep_newlines: bool) -> str:
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return ch if keep_newlines and ch == "\n" else f"\\x{code:02x}"
    if code < 0x7F:
        return ch
    if 0x80 <= code < 0xA0:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(ch) in _ESCAPED_CATEGORIES:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


def visible(value: object, keep_newlines: bool = False) -> str:
    """``value`` as text with every control, format and undecodable character escaped
    visibly (see the module docstring). ``None`` is ``""``. With ``keep_newlines`` a
    ``\\n`` stays a line break (for multi-line text the program wrote itself)."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape_char(ch, keep_newlines) for ch in text)


def plain_terminal(value: object) -> str:
    """Text for a terminal written without rich (``typer.echo``)."""
    return visible(value)


def for_terminal(value: object, style: str = "") -> Text:
    """Text for a rich console: a ``Text`` is printed as is, never parsed as markup."""
    return Text(visible(value), style=style)


def terminal_line(*parts: str | tuple[str, str] | Text) -> Text:
    """One line from trusted styled pieces (``("error:", "red")``), trusted plain strings
    written by the program, and ``for_terminal`` values; nothing in it is parsed as markup.
    Plain strings are escaped too (they may quote hostile text by mistake)."""
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(visible(part[0]), style=part[1])
        else:
            out.append(visible(part))
    return out


def for_html(value: object) -> str:
    """Text for HTML element content or a quoted attribute value."""
    return html.escape(visible(value), quote=True)


def for_csv(value: object) -> str:
    """A CSV cell: visible escapes, then an apostrophe before a would-be formula (booleans
    are ``1``/``0``)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    text = visible(value)
    return "'" + text if _looks_like_formula(text) else text


def _looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula: its first character after
    any leading whitespace (some applications strip spaces, no-break spaces included,
    before looking), compared in NFKC form, so that the full-width and small forms
    (U+FF1D, U+FE66 ...) that an input method or a locale may turn into ``=`` count too."""
    rest = text.lstrip()
    return bool(rest) and (text.startswith(FORMULA_START) or unicodedata.normalize(
        "NFKC", rest[0]).startswith(FORMULA_START))
