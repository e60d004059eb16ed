"""Category mappings: the source's raw category value -> the label shown in reports.

A mapping is chosen per import and stored with the set (FORMATS.md "Categories"). Every
match keeps both the label and the raw value. A raw value missing from the mapping is
labelled ``"unmapped:<raw>"``, never guessed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import HashSetFileError

#: DHS / Project VIC scheme as used by Autopsy (FORMATS.md).
DHS = {
    "0": "uncategorized",
    "1": "child exploitation (illegal)",
    "2": "child exploitation (non-illegal / age difficult)",
    "3": "CGI/animation (child exploitive)",
    "4": "exemplar/comparison (internal use)",
    "5": "non-pertinent",
}
#: As DHS, but category 0 labelled non-pertinent: in distributed Project VIC sets category 0
#: holds millions of non-pertinent entries and 5 is unused (FORMATS.md).
PROJECTVIC = {**DHS, "0": "non-pertinent (uncategorized)"}
#: UK CAID grading. UNCONFIRMED: how CAID's VICS export encodes A/B/C in the integer
#: ``Category`` is not publicly documented. This preset assumes 1=A, 2=B, 3=C and also
#: accepts the letters themselves; pass your own mapping when your CAID release differs.
CAID = {
    "A": "A (penetrative, animals, sadism)",
    "B": "B (non-penetrative)",
    "C": "C (other indecent)",
    "1": "A (penetrative, animals, sadism)",
    "2": "B (non-penetrative)",
    "3": "C (other indecent)",
    "0": "uncategorized",
}
#: INTERPOL ICSE has no category column; its "Baseline" flag is mapped to a category.
ICSE = {"baseline": "INTERPOL baseline", "non-baseline": "ICSE (not baseline)"}
#: NSRL and other known-file sets.
KNOWN = {"known": "known"}

PRESETS: dict[str, dict[str, str]] = {
    "dhs": DHS, "projectvic": PROJECTVIC, "caid": CAID, "icse": ICSE, "known": KNOWN,
}


def label(mapping: dict[str, str] | None, raw: str | None) -> str | None:
    """The label of a raw category value under ``mapping`` (None when raw is None)."""
    if raw is None:
        return None
    if mapping is None:
        return raw
    found = mapping.get(raw)
    if found is None:
        found = mapping.get(raw.upper())
    return found if found is not None else f"unmapped:{raw}"


def resolve(spec: str | dict[str, str] | None, default: str | None) -> dict[str, str] | None:
    """Turn a ``--category-map`` value into a mapping.

    ``spec`` is a preset name (``dhs``, ``projectvic``, ``caid``, ``icse``, ``known``), a
    path to a JSON object file, inline ``raw=label`` pairs separated by commas, or a dict.
    None selects the format's default preset.
    """
    if spec is None:
        return dict(PRESETS[default]) if default else None
    if isinstance(spec, dict):
        return {str(k): str(v) for k, v in spec.items()}
    if spec in PRESETS:
        return dict(PRESETS[spec])
    p = Path(spec)
    if p.suffix.lower() == ".json" or p.is_file():
        try:
            data = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise HashSetFileError(f"{spec}: cannot read category map: {e}") from e
        if not isinstance(data, dict):
            raise HashSetFileError(f"{spec}: a category map must be a JSON object")
        return {str(k): str(v) for k, v in data.items()}
    if "=" in spec:
        out: dict[str, str] = {}
        for part in spec.split(","):
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                raise HashSetFileError(f"category map entry {part!r} is not raw=label")
            out[k.strip()] = v.strip()
        return out
    known = ", ".join(sorted(PRESETS))
    raise HashSetFileError(f"unknown category map {spec!r} (presets: {known}; or a .json "
                           "file; or raw=label,raw=label)")
