"""Issue 14 review fixes: the full-decode confirmation refuses content that changed since
the scan; the ``confirmed`` grade needs PDQ with pHash or dHash on the same set entry and
the same form of the picture, neither draft-decoded; ``triage match`` confirms with the
options the scan was recorded with.

Evidence: Meta's sample-b.jpg (1600x1004, draft-decoded to 800x502, which moves its PDQ 2
bits from Meta's published value, testdata/answers/pdq_reference.json). A changed copy
differs in one byte of its JFIF header (the horizontal density, 96 -> 72 dpi): the same
size, the same picture, another SHA-256 (hashlib's, computed here)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support import TESTDATA, rows, run_triage
from triage.model import MatchHit

PDQ_DIR = TESTDATA / "media" / "pdq"
REFERENCE = json.loads((TESTDATA / "answers" / "pdq_reference.json").read_text())["items"]
SAMPLE_B = next(i["pdq"] for i in REFERENCE if i["file"] == "media/pdq/sample-b.jpg"
                and "pdq" in i)
#: Offset of the low byte of the JFIF APP0 horizontal density (FFD8 FFE0 len "JFIF\0"
#: version units Xdensity).
XDENSITY_LOW = 15


def _cli(*args: str, expect: tuple[int, ...] = (0,)) -> str:
    proc = run_triage(*args)
    assert proc.returncode in expect, proc.stdout + proc.stderr
    return proc.stdout


def _alter_in_place(path: Path) -> tuple[str, str]:
    """Change one header byte of the JPEG at ``path`` without changing its size, inode
    or modification time (what the directory source checks); returns the SHA-256 before
    and after."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"\xff\xd8\xff\xe0" and data[6:11] == b"JFIF\x00"
    assert data[XDENSITY_LOW] == 0x60
    st = path.stat()
    before = hashlib.sha256(data).hexdigest()
    data[XDENSITY_LOW] = 0x48
    with path.open("r+b") as f:  # in place: same inode
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        st.st_ino, st.st_size, st.st_mtime_ns)
    return before, hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one PDQ-only set: sample-b's published PDQ."""
    pytest.importorskip("pdqhash")
    root = tmp_path_factory.mktemp("store")
    (root / "pdq-only.txt").write_text(f"# pdq\n{SAMPLE_B} sample-b\n")
    path = root / "store.sqlite"
    _cli("hashset", "import", str(root / "pdq-only.txt"), "--store", str(path))
    return path


def _evidence(tmp_path: Path) -> Path:
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copyfile(PDQ_DIR / "sample-b.jpg", ev / "copy.jpg")
    return ev


def _pdq_hit(case: Path) -> dict[str, Any]:
    hits = [dict(r) for r in rows(case, "SELECT * FROM matches WHERE algorithm='pdq' AND "
                                  "run_id=(SELECT max(run_id) FROM matches)")]
    assert len(hits) == 1, hits
    return hits[0]


def _confirm_errors(case: Path) -> list[dict[str, Any]]:
    return [dict(r) for r in rows(case, "SELECT * FROM errors WHERE stage='confirm'")]


# -- 1. confirmation refuses content that changed -----------------------------------------
def test_match_refuses_a_full_decode_of_changed_content(store: Path, tmp_path: Path) -> None:
    """Scanned without matching (draft values kept), the file is changed in place (same
    size, inode and mtime, so the source's own check does not see it); `triage match`
    re-reads it for the full decode, sees another SHA-256 and keeps the draft values."""
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    _cli("scan", str(ev), "--case", str(case), "--no-match", "-q", "--jobs", "1")
    recorded, reread = _alter_in_place(ev / "copy.jpg")
    assert rows(case, "SELECT value FROM hashes WHERE algorithm='sha256'")[0][0] == recorded
    summary = json.loads(_cli("match", str(case), "--store", str(store), "--json"))
    hit = _pdq_hit(case)
    assert (hit["grade"], hit["decode"], hit["distance"]) == ("unconfirmed", "draft", 2)
    errors = _confirm_errors(case)
    assert len(errors) == 1
    assert errors[0]["error_class"] == "ContentChanged"
    assert errors[0]["message"].startswith(
        f"content_changed: recorded sha256 {recorded}, re-read sha256 {reread}")
    assert summary["confirmation"] == {"candidates": 1, "confirmed": 0, "failed": 0,
                                       "content_changed": 1, "no_digest": 0,
                                       "not_reachable": 0}
    # Nothing of the re-read content was recorded: the digests and draft values stand.
    assert rows(case, "SELECT value FROM hashes WHERE algorithm='sha256'")[0][0] == recorded
    assert not rows(case, "SELECT 1 FROM hash_variants WHERE variant='draft'")
    assert "JPEG draft decode" in rows(
        case, "SELECT preprocessing FROM hashes WHERE algorithm='pdq'")[0][0]
    assert "all checks passed" in _cli("verify", str(case))
    # Not tried again: a later match leaves it a refused candidate.
    again = json.loads(_cli("match", str(case), "--store", str(store), "--json"))
    assert again["confirmation"]["candidates"] == 0
    assert _pdq_hit(case)["grade"] == "unconfirmed"


def test_scan_refuses_a_full_decode_of_changed_content(store: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """The scan's own second pass: the file changes between the main pass and the
    confirmation pass."""
    import triage.confirm
    from triage.scan import ScanOptions, scan

    ev = _evidence(tmp_path)
    original = triage.confirm.confirm
    changed: list[tuple[str, str]] = []

    def change_then_confirm(*args: Any, **kwargs: Any) -> triage.confirm.Outcome:
        changed.append(_alter_in_place(ev / "copy.jpg"))
        return original(*args, **kwargs)

    monkeypatch.setattr(triage.confirm, "confirm", change_then_confirm)
    case = tmp_path / "case"
    summary = scan(str(ev), case, ScanOptions(jobs=1, store=str(store)), argv=["test"])
    assert len(changed) == 1
    recorded, reread = changed[0]
    hit = _pdq_hit(case)
    assert (hit["grade"], hit["decode"], hit["distance"]) == ("unconfirmed", "draft", 2)
    errors = _confirm_errors(case)
    assert len(errors) == 1 and errors[0]["message"].startswith(
        f"content_changed: recorded sha256 {recorded}, re-read sha256 {reread}")
    assert summary.matches is not None
    assert summary.matches.confirmation == {"candidates": 1, "confirmed": 0, "failed": 0,
                                            "content_changed": 1, "no_digest": 0}
    assert summary.matches.by_grade["unconfirmed"] == 1


def test_content_change_compares_the_strongest_common_digest() -> None:
    from triage.confirm import content_change
    from triage.model import FileResult, HashValue

    result = FileResult(1, "done", hashes=(HashValue("md5", "aa"), HashValue("sha256", "bb"),
                                           HashValue("pdq", "cc", 100)))
    assert content_change({"md5": "aa", "sha256": "bb"}, result) is None
    assert content_change({"md5": "aa", "sha256": "BB"}, result) is None  # case of hex
    why = content_change({"md5": "ab", "sha256": "bd"}, result)
    assert why == "content_changed: recorded sha256 bd, re-read sha256 bb"
    assert content_change({"md5": "ab"}, result) == "content_changed: recorded md5 ab, " \
        "re-read md5 aa"
    # Nothing to compare: refused too (the content cannot be shown to be the one scanned),
    # with its own reason: not evidence of a change.
    assert content_change({}, result) == ("no_digest: no digest to compare (recorded: none; "
                                          "re-read: md5, sha256), so the re-read content "
                                          "cannot be shown to be the one scanned")


# -- 2. the confirmed grade -----------------------------------------------------------------
def _near(algorithm: str, variant: str = "original", decode: str = "full",
          file_id: int = 1, set_id: str = "s1") -> MatchHit:
    return MatchHit(file_id=file_id, set_id=set_id, set_name="set", set_version=None,
                    algorithm=algorithm, match_type="near", file_value="00",
                    known_value=algorithm, distance=1, threshold=10, category=None,
                    category_raw=None, series=None, victim_identified=None,
                    offender_identified=None, known=False, entry_ref="7", variant=variant,
                    decode=decode)


def _grades(*hits: MatchHit, refs: list[int] | None = None) -> list[str | None]:
    from triage.matching import _graded

    return [h.grade for h in _graded(list(hits), refs or [7] * len(hits))]


@pytest.mark.parametrize(("hits", "expected"), [
    # PDQ with pHash, or with dHash, on the same form: confirmed (both hits).
    ((_near("pdq"), _near("phash")), ["confirmed", "confirmed"]),
    ((_near("pdq", "rot90"), _near("dhash", "rot90")), ["confirmed", "confirmed"]),
    ((_near("pdq", decode="confirmed"), _near("phash", decode="confirmed"),
      _near("dhash", decode="confirmed")), ["confirmed"] * 3),
    # pHash with dHash, no PDQ: review.
    ((_near("phash"), _near("dhash")), ["review", "review"]),
    # PDQ on rot90, pHash on the picture as stored: review.
    ((_near("pdq", "rot90"), _near("phash")), ["review", "review"]),
    ((_near("pdq", "unletterboxed"), _near("dhash")), ["review", "review"]),
    # One of them draft-decoded: the other stays review, the draft one unconfirmed.
    ((_near("pdq"), _near("phash", decode="draft")), ["review", "unconfirmed"]),
    ((_near("pdq", decode="draft"), _near("phash")), ["unconfirmed", "review"]),
    # PDQ alone, or two variants of PDQ: review.
    ((_near("pdq"),), ["review"]),
    ((_near("pdq"), _near("pdq", "rot90")), ["review", "review"]),
    # Another file, or another set: no corroboration.
    ((_near("pdq"), _near("phash", file_id=2)), ["review", "review"]),
    ((_near("pdq"), _near("phash", set_id="s2")), ["review", "review"]),
])
def test_confirmed_needs_pdq_and_phash_or_dhash_on_one_form(hits: tuple[MatchHit, ...],
                                                             expected: list[str]) -> None:
    assert _grades(*hits) == expected


def test_confirmed_needs_the_same_set_entry() -> None:
    assert _grades(_near("pdq"), _near("phash"), refs=[7, 8]) == ["review", "review"]


# -- 3. `triage match` confirms with the scan's recorded options --------------------------
def test_match_confirms_with_the_scans_recorded_options(store: Path, tmp_path: Path) -> None:
    """A scan with --no-variants (and its own jobs and timeout) whose candidate is
    confirmed by a later `triage match`: no variant is computed then either."""
    from triage.case import Case
    from triage.confirm import settings
    from triage.runs import scan_options

    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    _cli("scan", str(ev), "--case", str(case), "--no-match", "--no-variants", "-q",
         "--jobs", "1", "--timeout", "40")
    with Case.open(case, create=False) as c:
        (evidence_id, wrote), = c.conn.execute(
            "SELECT evidence_id, run_id FROM files WHERE display_path='copy.jpg'")
        recorded = scan_options(c, evidence_id)
        assert recorded == scan_options(c, evidence_id, wrote)
        assert recorded is not None and recorded["worker"]["variants"] is False
        s = settings(recorded)
        assert (s.worker.variants, s.jobs, s.timeout, s.worker.container_seconds) == (
            False, 1, 40.0, 20.0)
        assert s.worker.draft_size == recorded["worker"]["draft_size"] == 360
        assert scan_options(c, evidence_id + 1) is None
    summary = json.loads(_cli("match", str(case), "--store", str(store), "--json"))
    assert summary["confirmation"]["confirmed"] == 1
    hit = _pdq_hit(case)
    assert (hit["grade"], hit["decode"], hit["distance"], hit["variant"]) == (
        "review", "confirmed", 0, "original")
    # Only the draft values a confirmation keeps: no rotation, mirror image or
    # unletterboxed form was hashed.
    variants = {r[0] for r in rows(case, "SELECT DISTINCT variant FROM hash_variants")}
    assert variants == {"draft"}
    assert "all checks passed" in _cli("verify", str(case))


def test_confirmation_settings_fit_this_machine() -> None:
    """A scan recorded on a bigger machine (many jobs): the confirmation on this one runs at
    most this machine's cores at once. The recorded --memory-budget is kept as it is (a
    smaller one could refuse a decode the scan admitted), as are no budget (0) and none."""
    from triage.confirm import settings
    from triage.pipeline import default_jobs

    big = settings({"jobs": 10_000, "memory_budget": 1 << 50, "timeout": 60})
    assert (big.jobs, big.memory_budget) == (default_jobs(), 1 << 50)
    small = settings({"jobs": 1, "memory_budget": 600 << 20})
    assert (small.jobs, small.memory_budget) == (1, 600 << 20)
    assert settings({"memory_budget": 0}).memory_budget == 0
    assert settings({}).memory_budget is None


def test_scan_options_of_a_match_run_falls_back_to_the_scan(store: Path,
                                                           tmp_path: Path) -> None:
    """A file whose result a match run wrote (a confirmation) is confirmed, if ever
    again, with the last scan's options."""
    from triage.case import Case
    from triage.runs import scan_options

    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    _cli("scan", str(ev), "--case", str(case), "--no-match", "--no-variants", "-q",
         "--jobs", "1")
    _cli("match", str(case), "--store", str(store), "--json")
    with Case.open(case, create=False) as c:
        (evidence_id, wrote, command), = c.conn.execute(
            "SELECT f.evidence_id, f.run_id, r.command FROM files f JOIN runs r ON "
            "r.id = f.run_id WHERE f.display_path='copy.jpg'")
        assert command == "match"
        recorded = scan_options(c, evidence_id, wrote)
        assert recorded is not None and recorded["worker"]["variants"] is False


# -- 4. carved pictures and items inside files: their own bytes and digests ----------------
def _reformatted_fat(tmp_path: Path) -> tuple[Path, int]:
    """A FAT32 image that held sample-b.jpg and was formatted again (as the review's
    /tmp/rev/mk.sh, and build_carve.sh's fat32re.raw): the picture lies in $Unallocated,
    a carving candidate. Returns the image and the picture's image offset."""
    import subprocess

    for tool in ("mkfs.fat", "mcopy"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (dosfstools, mtools)")
    image = tmp_path / "fat.raw"
    with image.open("wb") as f:
        f.truncate(34 << 20)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    fat = ["mkfs.fat", "-F", "32", "-s", "1", "-S", "512", str(image)]
    subprocess.run(fat, check=True, capture_output=True, env=env)
    subprocess.run(["mcopy", "-i", str(image), str(PDQ_DIR / "sample-b.jpg"), "::b.jpg"],
                   check=True, capture_output=True, env=env)
    subprocess.run(fat, check=True, capture_output=True, env=env)
    picture = (PDQ_DIR / "sample-b.jpg").read_bytes()
    at = image.read_bytes().find(picture)
    assert at > 0 and at % 512 == 0
    return image, at


def _carved_item(case: Path) -> dict[str, Any]:
    items = [dict(r) for r in rows(case, "SELECT k.*, f.status, (SELECT value FROM hashes "
                                   "WHERE file_id=k.file_id AND algorithm='sha256') AS sha256 "
                                   "FROM carved k JOIN files f ON f.id=k.file_id")]
    assert len(items) == 1, items
    return items[0]


def test_a_carved_near_hit_is_confirmed_from_its_own_bytes(store: Path, tmp_path: Path
                                                           ) -> None:
    """Review regression of the content check: a carved picture's re-read was of its
    whole area, which has no digests, so every carved near hit was refused
    ("content_changed: no digest to compare"). Now the carved item's own image bytes are
    read again and compared with its own digests: confirmed, in the scan and in a later
    `triage match`."""
    image, at = _reformatted_fat(tmp_path)
    sha = hashlib.sha256((PDQ_DIR / "sample-b.jpg").read_bytes()).hexdigest()
    case = tmp_path / "case"
    summary = json.loads(_cli("scan", str(image), "--case", str(case), "--store", str(store),
                              "--json", "-q", "--jobs", "1", expect=(0, 3)))
    item = _carved_item(case)
    assert (item["image_offset"], item["sha256"], item["status"]) == (at, sha, "done")
    assert summary["matches"]["confirmation"] == {
        "candidates": 1, "confirmed": 1, "failed": 0, "content_changed": 0, "no_digest": 0}
    hit = _pdq_hit(case)
    assert hit["file_id"] == item["file_id"]
    # PDQ only in the store: a confirmed decode, graded review (no pHash/dHash entry).
    assert (hit["grade"], hit["decode"], hit["distance"]) == ("review", "confirmed", 0)
    assert not rows(case, "SELECT * FROM errors")
    assert rows(case, "SELECT count(*) FROM hash_variants WHERE variant='draft' AND "
                "file_id=?", (item["file_id"],))[0][0] >= 1
    assert "all checks passed" in _cli("verify", str(case))
    # The same through `triage match` after a scan without matching.
    later = tmp_path / "later"
    _cli("scan", str(image), "--case", str(later), "--no-match", "-q", "--jobs", "1",
         expect=(0, 3))
    summary = json.loads(_cli("match", str(later), "--store", str(store), "--json"))
    assert summary["confirmation"] == {"candidates": 1, "confirmed": 1, "failed": 0,
                                       "content_changed": 0, "no_digest": 0,
                                       "not_reachable": 0}
    assert (_pdq_hit(later)["grade"], _pdq_hit(later)["decode"]) == ("review", "confirmed")
    assert not rows(later, "SELECT * FROM errors")
    assert "all checks passed" in _cli("verify", str(later))


def test_a_carved_item_whose_bytes_changed_is_refused(store: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    """The carved picture's bytes change in the image between the scan's passes (one JFIF
    header byte, same image size and mtime): its re-read SHA-256 differs from the carved
    item's recorded one, so the full decode is refused as content_changed."""
    import triage.confirm
    from triage.scan import ScanOptions, scan

    image, at = _reformatted_fat(tmp_path)
    data = bytearray(image.read_bytes())
    picture = (PDQ_DIR / "sample-b.jpg").read_bytes()
    before = hashlib.sha256(picture).hexdigest()
    changed = bytearray(picture)
    assert changed[XDENSITY_LOW] == 0x60
    changed[XDENSITY_LOW] = 0x48
    after = hashlib.sha256(changed).hexdigest()
    original = triage.confirm.confirm

    def change_then_confirm(*args: Any, **kwargs: Any) -> triage.confirm.Outcome:
        st = image.stat()
        with image.open("r+b") as f:
            f.seek(at + XDENSITY_LOW)
            f.write(bytes([changed[XDENSITY_LOW]]))
        os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
        return original(*args, **kwargs)

    monkeypatch.setattr(triage.confirm, "confirm", change_then_confirm)
    case = tmp_path / "case"
    summary = scan(str(image), case, ScanOptions(jobs=1, store=str(store)), argv=["test"])
    assert bytes(data[at:at + len(picture)]) == picture
    item = _carved_item(case)
    assert item["sha256"] == before  # the recorded digest stands
    assert summary.matches is not None
    assert summary.matches.confirmation == {"candidates": 1, "confirmed": 0, "failed": 0,
                                            "content_changed": 1, "no_digest": 0}
    hit = _pdq_hit(case)
    assert (hit["grade"], hit["decode"], hit["distance"]) == ("unconfirmed", "draft", 2)
    errors = _confirm_errors(case)
    assert len(errors) == 1 and errors[0]["file_id"] == item["file_id"]
    assert errors[0]["error_class"] == "ContentChanged"
    assert errors[0]["message"].startswith(
        f"content_changed: recorded sha256 {before}, re-read sha256 {after}")


def test_an_item_without_digests_is_refused_as_no_digest(store: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """An item whose digests the case does not hold (here: the recorded digests are
    hidden from the confirmation) cannot be shown to be the content scanned: refused with
    its own reason (no_digest), counted apart from content_changed (nothing says the
    content changed)."""
    import triage.confirm
    from triage.scan import ScanOptions, scan

    monkeypatch.setattr(triage.confirm, "recorded_digests", lambda case, ids: {})
    case = tmp_path / "case"
    summary = scan(str(_evidence(tmp_path)), case, ScanOptions(jobs=1, store=str(store)),
                   argv=["test"])
    assert summary.matches is not None
    assert summary.matches.confirmation == {"candidates": 1, "confirmed": 0, "failed": 0,
                                            "content_changed": 0, "no_digest": 1}
    errors = _confirm_errors(case)
    assert len(errors) == 1 and errors[0]["error_class"] == "NoDigest"
    assert errors[0]["message"].startswith("no_digest: no digest to compare (recorded: none; "
                                           "re-read: md5, sha1, sha256)")
    assert _pdq_hit(case)["grade"] == "unconfirmed"


def test_confirmation_admits_what_the_scans_budget_admitted() -> None:
    """(Cold review) a confirmation admits every decode the scan's own recorded
    --memory-budget admitted: otherwise its outcome (confirmed, or refused at stage
    ``confirm``) would depend on this machine's memory free at the time."""
    from triage import membudget
    from triage.confirm import settings

    here = membudget.plan(None, 1).budget
    assert here is not None
    recorded = 2 * here  # a --memory-budget above the default, accepted by the scan
    scan_plan = membudget.plan(recorded, 1)
    confirm_plan = membudget.plan(settings({"jobs": 1, "memory_budget": recorded})
                                  .memory_budget, 1)
    nbytes = scan_plan.capacity  # a picture the scan's budget admits
    assert nbytes is not None and confirm_plan.capacity is not None
    assert membudget.Admission(scan_plan.capacity).request(0, nbytes) == \
        membudget.GrantReply(True)
    assert membudget.Admission(confirm_plan.capacity).request(0, nbytes) == \
        membudget.GrantReply(True)
