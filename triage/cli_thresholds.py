"""The near-match threshold options shared by ``triage scan`` and ``triage match``
(re-exported by :mod:`triage.cli_hashset`). Kept apart so that ``triage scan`` defines its
options without importing the hash-set store and its formats (numpy; start-up time,
issue 13)."""

from __future__ import annotations

from typing import Annotated

import typer

from .errors import HashSetError


def _threshold_help() -> str:
    from hashsets.algorithms import near_algorithms

    defaults = ", ".join(f"{a.name} {a.default_threshold}" for a in near_algorithms())
    return (f"Near-match threshold ALGO=N, the largest Hamming distance that matches; "
            f"repeatable (defaults: {defaults}).")


def _quality_help() -> str:
    from hashsets.algorithms import gated

    defaults = ", ".join(f"{a.name} {a.min_quality}" for a in gated())
    return (f"Quality gate ALGO=N: hashes below quality N (0-100) are not matched; "
            f"repeatable (defaults: {defaults}).")


# Near-match thresholds, shared by `triage scan` and `triage match`; the generic options
# follow the algorithm registry, the per-algorithm ones are the documented older spellings.
ThresholdOpt = Annotated[list[str] | None, typer.Option(
    "--threshold", metavar="ALGO=N", help=_threshold_help())]
MinQualityOpt = Annotated[list[str] | None, typer.Option(
    "--min-quality", metavar="ALGO=N", help=_quality_help())]
PhashOpt = Annotated[int | None, typer.Option(min=0, max=64, help="Same as --threshold "
                                              "phash=N.")]
DhashOpt = Annotated[int | None, typer.Option(min=0, max=64, help="Same as --threshold "
                                              "dhash=N.")]
PdqOpt = Annotated[int | None, typer.Option(min=0, max=256, help="Same as --threshold pdq=N.")]
PdqQualityOpt = Annotated[int | None, typer.Option(min=0, max=100, help="Same as "
                                                   "--min-quality pdq=N.")]


def thresholds_from(threshold: list[str] | None, min_quality: list[str] | None,
                    phash: int | None = None, dhash: int | None = None,
                    pdq: int | None = None, pdq_min_quality: int | None = None
                    ) -> dict[str, int]:
    """The thresholds given on the command line as :func:`triage.matching.effective_thresholds`
    keys (defaults stay with the algorithms; ranges are checked there)."""
    if not threshold and not min_quality and \
            all(v is None for v in (phash, dhash, pdq, pdq_min_quality)):
        return {}  # nothing to check: the matching module (numpy) is not imported
    from hashsets.algorithms import ALGORITHMS

    from .matching import MIN_QUALITY, effective_thresholds

    out: dict[str, int] = {}
    for option, items, suffix in (("--threshold", threshold, ""),
                                  ("--min-quality", min_quality, MIN_QUALITY)):
        for item in items or ():
            name, sep, value = item.partition("=")
            name = name.strip().lower()
            if not sep or not value.strip().isdigit():
                raise typer.BadParameter(f"{item!r} is not ALGO=N (e.g. pdq=31)",
                                         param_hint=option)
            if name not in ALGORITHMS:
                raise typer.BadParameter(f"unknown algorithm {name!r} (known: "
                                         f"{', '.join(ALGORITHMS)})", param_hint=option)
            out[name + suffix] = int(value)
    for key, v in (("phash", phash), ("dhash", dhash), ("pdq", pdq),
                   ("pdq" + MIN_QUALITY, pdq_min_quality)):
        if v is not None:
            out[key] = v
    try:
        effective_thresholds(out)
    except HashSetError as e:  # a bad value on the command line is a usage error
        raise typer.BadParameter(str(e), param_hint="--threshold/--min-quality") from None
    return out
