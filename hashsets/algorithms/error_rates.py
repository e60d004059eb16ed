"""Measured error rates of the near-match thresholds (issue 14, item 5), stored with the tool.

``error_rates.json`` beside this module is written by ``benchmarks/bench_error_rates.py
--store`` (never by hand): on a labelled benign corpus, per near-match algorithm and per
threshold from 0 to twice the default, the false matches among unrelated pairs and the
transformed copies found, as a default scan with its confirmation pass records and matches
them, with the scan's picture variants (the minimum distance over a picture's 8
rotations/flips and its unletterboxed form; key ``dihedral``) and without them (``triage
scan --no-variants``; key ``plain``). It records the command, date, commit, library
versions and a description of the corpus. docs/error-rates.md explains the method and its
limits.

:func:`load` reads it into typed records; :func:`method_statements` and
:func:`method_data` give what a report's method section prints for a run's thresholds
(keys as in the ``match`` audit record: an algorithm's name, and ``NAME_min_quality``): one
sentence per near-match algorithm, saying plainly when a threshold has no measured figure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

FORMAT = "triage-error-rates"
FORMAT_VERSION = 1
#: Where the benchmark stores the figures (package data, see pyproject.toml).
STORED = Path(__file__).with_name("error_rates.json")
#: Key suffix of a quality gate in a run's thresholds (triage.matching.MIN_QUALITY; not
#: imported: hashsets does not depend on triage).
MIN_QUALITY = "_min_quality"
#: What every statement of measured figures is followed by (issue 14, "Why").
LIMITS = ("These figures come from benign pictures only. Published work shows that "
          "perceptual hashes can be evaded (most pictures can be altered to escape a match) "
          "and collided on purpose (an unrelated picture made to match), so a near match is "
          "evidence of similarity, not identity, to be confirmed by an examiner "
          "(docs/error-rates.md).")


class ErrorRatesUnavailable(ValueError):
    """The stored figures are missing or not in the expected form (the message says why)."""


@dataclass(frozen=True)
class Counts:
    """Figures at one threshold with the scan's variants on or off."""

    false_matches: int
    unrelated_pairs: int
    found: int
    transformed_pairs: int

    @property
    def false_match_rate(self) -> float:
        return self.false_matches / self.unrelated_pairs if self.unrelated_pairs else 0.0

    @property
    def recall(self) -> float:
        return self.found / self.transformed_pairs if self.transformed_pairs else 0.0


@dataclass(frozen=True)
class Figure:
    """The measured figures of one algorithm at one threshold."""

    algorithm: str
    label: str
    threshold: int
    default: bool  # the algorithm's default threshold
    dihedral: Counts  # minimum over the copy's variants (8 rotations/flips, unletterboxed)
    plain: Counts  # the copy as decoded (--no-variants)

    def sentence(self) -> str:
        on, off = self.dihedral, self.plain
        which = " (the default)" if self.default else ""
        return (f"At {self.label} {self.threshold}{which}: {on.false_matches:,} false matches "
                f"in {on.unrelated_pairs:,} unrelated pairs (rate {_rate(on)}) with the "
                f"scan's variants of each picture matched (its 8 rotations/flips, and its "
                f"unletterboxed form when it has dark borders), {off.false_matches:,} "
                f"(rate {_rate(off)}) without; recall on transformed copies "
                f"{100 * on.recall:.1f}% with, {100 * off.recall:.1f}% without "
                f"({on.transformed_pairs:,} copies).")

    def to_dict(self) -> dict[str, Any]:
        def counts(c: Counts) -> dict[str, Any]:
            return {"false_matches": c.false_matches, "unrelated_pairs": c.unrelated_pairs,
                    "false_match_rate": c.false_match_rate, "found": c.found,
                    "transformed_pairs": c.transformed_pairs, "recall": c.recall}

        return {"algorithm": self.algorithm, "threshold": self.threshold,
                "default": self.default, "dihedral": counts(self.dihedral),
                "plain": counts(self.plain)}


def _rate(c: Counts) -> str:
    return "0" if c.false_matches == 0 else f"{c.false_match_rate:.1e}"


@dataclass(frozen=True)
class AlgorithmRates:
    """One algorithm's figures at every measured threshold."""

    algorithm: str
    label: str
    bits: int
    default_threshold: int
    min_quality: int | None  # the quality gate the copies were matched under
    unrelated_pairs: int
    transformed_pairs: int
    copies_below_quality_gate: int
    figures: Mapping[int, Figure]

    @property
    def measured(self) -> tuple[int, int]:
        """The lowest and highest threshold measured."""
        return min(self.figures), max(self.figures)


@dataclass(frozen=True)
class ErrorRates:
    """The stored benchmark record."""

    command: str
    date_utc: str
    commit: str
    versions: Mapping[str, str]
    corpus_description: str
    pictures: int
    copies: int
    algorithms: Mapping[str, AlgorithmRates]

    def figure(self, algorithm: str, threshold: int) -> Figure | None:
        """The figures of ``algorithm`` at ``threshold``, or None when not measured."""
        rates = self.algorithms.get(algorithm)
        return None if rates is None else rates.figures.get(threshold)

    def provenance(self) -> str:
        return (f"Measured on {self.date_utc[:10]} by `{self.command}` (commit "
                f"{self.commit[:12]}; Pillow {self.versions.get('Pillow', '?')}, ImageHash "
                f"{self.versions.get('ImageHash', '?')}, pdqhash "
                f"{self.versions.get('pdqhash', '?')}) on {self.corpus_description}.")


def _int(d: Mapping[str, Any], key: str, where: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ErrorRatesUnavailable(f"{where}: {key!r} is not a count ({v!r})")
    return v


def parse(record: Any) -> ErrorRates:
    """The typed form of a stored record; raises :class:`ErrorRatesUnavailable` naming the
    first field that is missing or inconsistent."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ErrorRatesUnavailable(f"not a {FORMAT} record")
    if record.get("format_version") != FORMAT_VERSION:
        raise ErrorRatesUnavailable(f"format version {record.get('format_version')!r}, "
                                    f"expected {FORMAT_VERSION}")
    corpus = record.get("corpus")
    algs = record.get("algorithms")
    if not isinstance(corpus, dict) or not isinstance(algs, dict):
        raise ErrorRatesUnavailable("no corpus or algorithms")
    out: dict[str, AlgorithmRates] = {}
    for name, a in algs.items():
        where = f"algorithm {name}"
        if not isinstance(a, dict) or not isinstance(a.get("thresholds"), list):
            raise ErrorRatesUnavailable(f"{where}: no thresholds")
        m, n = _int(a, "unrelated_pairs", where), _int(a, "transformed_pairs", where)
        # Without variants a copy may have fewer values past the quality gate (its
        # unletterboxed form's quality can pass where the picture as stored does not).
        m_plain = _int(a, "plain_unrelated_pairs", where) if "plain_unrelated_pairs" in a \
            else m
        default = _int(a, "default_threshold", where)
        figures: dict[int, Figure] = {}
        for row in a["thresholds"]:
            t = _int(row, "threshold", where)
            here = f"{where} threshold {t}"
            modes = {}
            for mode in ("dihedral", "plain"):
                c = row.get(mode)
                if not isinstance(c, dict):
                    raise ErrorRatesUnavailable(f"{here}: no {mode} figures")
                modes[mode] = Counts(_int(c, "false_matches", here),
                                     m if mode == "dihedral" else m_plain,
                                     _int(c, "found", here), n)
            figures[t] = Figure(name, str(a.get("label", name)), t, t == default,
                                modes["dihedral"], modes["plain"])
        gate = a.get("min_quality")
        out[name] = AlgorithmRates(
            algorithm=name, label=str(a.get("label", name)), bits=_int(a, "bits", where),
            default_threshold=default, min_quality=gate if isinstance(gate, int) else None,
            unrelated_pairs=m, transformed_pairs=n,
            copies_below_quality_gate=_int(a, "copies_below_quality_gate", where),
            figures=figures)
    versions = record.get("versions") if isinstance(record.get("versions"), dict) else {}
    return ErrorRates(
        command=str(record.get("command", "")), date_utc=str(record.get("date_utc", "")),
        commit=str(record.get("commit", "")),
        versions={str(k): str(v) for k, v in (versions or {}).items()},
        corpus_description=str(corpus.get("description", "")),
        pictures=_int(corpus, "pictures", "corpus"), copies=_int(corpus, "copies", "corpus"),
        algorithms=out)


@cache
def load() -> ErrorRates:
    """The figures stored with the tool (read once). Raises :class:`ErrorRatesUnavailable`
    when the file is missing or malformed."""
    try:
        text = resources.files(__package__).joinpath(STORED.name).read_text("utf-8")
        record = json.loads(text)
    except (OSError, ValueError) as e:
        raise ErrorRatesUnavailable(f"{STORED.name}: {e}") from None
    return parse(record)


def _near_thresholds(thresholds: Mapping[str, Any] | None) -> tuple[dict[str, int], bool]:
    """(near-match algorithm -> threshold, whether they are the defaults): the run's, or the
    registry's defaults when no run recorded any."""
    from . import near_algorithms

    near = {a.name: a for a in near_algorithms() if a.default_threshold is not None}
    if thresholds:
        return {k: int(v) for k, v in sorted(thresholds.items())
                if k in near and isinstance(v, int | float)}, False
    return {k: int(a.default_threshold or 0) for k, a in near.items()}, True


def method_statements(thresholds: Mapping[str, Any] | None) -> list[str]:
    """What a report's method section says about error rates for a run's ``thresholds``
    (empty or None: no match run; the defaults' figures are given). Never raises: a missing
    or malformed file is said in the text."""
    near, defaults = _near_thresholds(thresholds)
    try:
        rates = load()
    except ErrorRatesUnavailable as e:
        return [f"Measured error rates are not available ({e})."]
    out = [("No match run: measured error rates at the default thresholds. "
            if defaults else "Measured error rates at this run's thresholds. ")
           + rates.provenance()]
    for name, t in near.items():
        out.append(_statement(rates, name, t, thresholds or {}))
    out.append(LIMITS)
    return out


def _statement(rates: ErrorRates, name: str, t: int, thresholds: Mapping[str, Any]) -> str:
    a = rates.algorithms.get(name)
    if a is None:
        return f"{name}: threshold {t}; no measured error rate for this algorithm."
    f = a.figures.get(t)
    if f is None:
        lo, hi = a.measured
        return (f"{a.label} threshold {t} is not the default ({a.default_threshold}) and has "
                f"no measured error rate (thresholds {lo}-{hi} were measured): the false-"
                "match rate and recall of this run are unknown.")
    text = f.sentence()
    if a.min_quality is not None and a.copies_below_quality_gate:
        text += (f" {a.copies_below_quality_gate:,} copies under the quality gate "
                 f"({a.min_quality}) were never matched: counted as not found, their pairs "
                 "not counted.")
    gate = thresholds.get(name + MIN_QUALITY)
    if a.min_quality is not None and isinstance(gate, int) and gate != a.min_quality:
        text += (f" This run's {a.label} quality gate was {gate}, the figures were measured "
                 f"with {a.min_quality}: they do not describe this run exactly.")
    return text


def method_data(thresholds: Mapping[str, Any] | None) -> dict[str, Any]:
    """The same as :func:`method_statements`, as JSON-ready data for a report's method
    record: the source of the figures and, per near-match algorithm, the figure at the
    threshold used (``figure`` None when it was not measured)."""
    near, defaults = _near_thresholds(thresholds)
    try:
        rates = load()
    except ErrorRatesUnavailable as e:
        return {"available": False, "reason": str(e)}
    return {
        "available": True, "thresholds_are_defaults": defaults,
        "command": rates.command, "date_utc": rates.date_utc, "commit": rates.commit,
        "versions": dict(rates.versions), "corpus": rates.corpus_description,
        "figures": [{"algorithm": name, "threshold": t,
                     "figure": None if (f := rates.figure(name, t)) is None else f.to_dict(),
                     "statement": _statement(rates, name, t, thresholds or {})}
                    for name, t in near.items()],
        "limits": LIMITS,
    }
