"""A new algorithm is one module: the toy of ``tests/toy_algorithm.py`` (40 bits, not a
multiple of 64), registered in-process, flows end to end with nothing else changed:
the scan's workers compute it, the case stores it, a plain list and a CSV set of it import,
it matches (near; the CSV set's MD5 column matches exactly), the thresholds know it, and
every export carries it; a VICS export of it imports back.

How the workers learn of it (no plug-in loading from the environment): the supervisor
passes its algorithm objects for the names in ``WorkerOptions.algorithms`` to each worker
(pickled by reference, so the worker imports ``tests.toy_algorithm``), and a worker
registers any its own registry lacks (``triage.worker.worker_main``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashsets.algorithms import get, registered
from hashsets.errors import HashSetFileError
from hashsets.store import HashSetStore
from tests.reports.helpers import pdftotext
from tests.support import rows
from tests.toy_algorithm import MeanBits
from triage.case import Case
from triage.cli_hashset import thresholds_from
from triage.matching import effective_thresholds, match_case
from triage.model import record_dict
from triage.report.export import export
from triage.scan import ScanOptions, scan

NAME = MeanBits.name


@pytest.fixture
def toy() -> Iterator[MeanBits]:
    with registered(MeanBits()) as alg:
        assert isinstance(alg, MeanBits)
        yield alg


def picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (10, 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((160, 100), Image.Resampling.BICUBIC)


def flip(value: str, bits: int, n: int) -> str:
    v = int(value, 16)
    for b in range(n):
        v ^= 1 << (bits - 1 - 3 * b)
    return f"{v:0{len(value)}x}"


def test_toy_algorithm_end_to_end(toy: MeanBits, tmp_path: Path) -> None:
    ev = tmp_path / "evidence"
    ev.mkdir()
    pics = {name: picture(seed) for name, seed in (("a", 1), ("b", 2), ("c", 3), ("d", 4))}
    for name, img in pics.items():
        img.save(ev / f"{name}.png", "PNG")
    value = {name: toy.compute(img)[0] for name, img in pics.items()}
    assert len(set(value.values())) == 4
    md5_c = hashlib.md5((ev / "c.png").read_bytes()).hexdigest()

    # Sets: a plain list of the toy (a exactly, b two bits away); a CSV with a toy column
    # (c three bits away) and an MD5 column (c, exact).
    sets = tmp_path / "sets"
    sets.mkdir()
    (sets / "toy.txt").write_text(f"# toy list\n{value['a']}\n{flip(value['b'], 40, 2)}\n")
    (sets / "toy.csv").write_text(f"MD5,Mean-Bits,category\n{md5_c},{flip(value['c'], 40, 3)},"
                                  "1\n,0123456789,2\n")
    store_path = tmp_path / "store.sqlite"
    with HashSetStore(store_path) as store:
        plain = store.import_file(sets / "toy.txt", format="plain",
                                  options={"algorithm": NAME})
        table = store.import_file(sets / "toy.csv")
        assert plain.set.hash_counts == {NAME: 2} and plain.set.accepted == 2
        assert table.set.format == "csv" and table.set.hash_counts == {"md5": 1, NAME: 2}

    # Thresholds and CLI options are derived from the registry.
    assert effective_thresholds(None)[NAME] == MeanBits.default_threshold
    assert thresholds_from([f"{NAME}=2"], None) == {NAME: 2}

    case_dir = tmp_path / "case"
    options = ScanOptions(jobs=1, store=str(store_path))
    assert NAME in options.worker.algorithms
    summary = scan(str(ev), case_dir, options, argv=["test"])
    assert summary.by_status == {"done": 4}, summary
    assert summary.counts.images_with_perceptual_hashes == 4

    # The case: the workers computed the toy for every picture, with its preprocessing.
    stored = {Path(r["display_path"]).stem: (r["value"], r["preprocessing"]) for r in rows(
        case_dir, "SELECT f.display_path, h.value, h.preprocessing FROM hashes h "
                  "JOIN files f ON f.id = h.file_id WHERE h.algorithm = ?", (NAME,))}
    assert {k: v for k, (v, _) in stored.items()} == value
    assert all(p.endswith(MeanBits.preprocessing) for _, p in stored.values())

    # Matches: a (distance 0), b (2), c (3) near by the toy; c exact by MD5; d nothing.
    found = sorted((Path(r["display_path"]).stem, r["algorithm"], r["match_type"],
                    r["distance"], r["threshold"]) for r in rows(
        case_dir, "SELECT f.display_path, m.* FROM matches m JOIN files f ON f.id = m.file_id"))
    t = MeanBits.default_threshold
    assert found == [("a", NAME, "near", 0, t), ("b", NAME, "near", 2, t),
                     ("c", "md5", "exact", 0, None), ("c", NAME, "near", 3, t)]

    # A re-match with a tighter toy threshold drops b and c's toy hits.
    with Case.open(case_dir, create=False) as case:
        run = case.start_run("match", ["test"], {}, {})
        again = match_case(case, run, store_path, thresholds={NAME: 1})
        case.end_run(run, "completed", record_dict(again))
    assert again.near == 1 and again.exact == 1 and again.damaged_sets == ()

    # Every export carries the toy's values.
    out = tmp_path / "out"
    for fmt in ("csv", "jsonl", "html", "pdf", "vics"):
        export(case_dir, fmt, out / f"report.{fmt}")
    table_rows = list(csv.DictReader(io.StringIO(
        (out / "report.csv").read_text("utf-8-sig"))))
    assert NAME in table_rows[0] and f"{NAME}_quality" not in table_rows[0]
    assert {Path(r["path"]).stem: r[NAME] for r in table_rows} == value
    files = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    files = [r for r in files if r.get("type") == "file"]
    assert {Path(r["display_path"]).stem: r["hashes"][NAME]["value"] for r in files} == value
    html = (out / "report.html").read_text("utf-8")
    text = pdftotext(out / "report.pdf")
    for doc in (html, text):
        assert NAME in doc and MeanBits.preprocessing.split(":")[0] in doc
        assert value["a"] in doc
    vics = json.loads((out / "report.vics").read_text())
    media = vics["value"][0]["Media"]
    alt = {m["RelativeFilePath"].rsplit("/", 1)[-1]: {a["HashName"]: a["HashValue"]
                                                     for a in m["AlternativeHashes"]}
           for m in media}
    assert {Path(k).stem: v["MeanBits"] for k, v in alt.items()} == \
        {k: value[k] for k in ("a", "c")}  # the files hit in the last match run
    with HashSetStore(tmp_path / "store2.sqlite") as store:
        back = store.import_file(out / "report.vics")
        assert back.set.hash_counts[NAME] == len(media)


def test_toy_is_unknown_outside_its_registration(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        get(NAME)
    (tmp_path / "toy.txt").write_text("0123456789\n")
    with HashSetStore(tmp_path / "s.sqlite") as store, \
            pytest.raises(HashSetFileError, match="unknown hash algorithm 'meanbits'"):
        store.import_file(tmp_path / "toy.txt", format="plain", options={"algorithm": NAME})
