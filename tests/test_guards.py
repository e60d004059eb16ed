"""Issue 12, items 2 (recording), 4 and 6 and the symlinked-evidence bullet, through the real
command line: a case never inside the evidence nor the evidence inside the case (also
through links and bind mounts); case details never change silently; exports never
overwrite; an image's stored and computed hashes land in its evidence row; evidence given
through a symbolic link is read through its target; the terminal summary and help."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.support import TESTDATA, rows, run_triage, scan_json, simulate
from triage import placement

DFVFS = TESTDATA / "disk" / "dfvfs"
#: MANIFEST.md: the ext2 file system's raw MD5, also the MD5 stored in both E01 sets.
EXT2_MD5 = "196066add11fb71c4c49cf1bb50d6d24"
#: MANIFEST.md: a_directory/a_file of that file system.
A_FILE_MD5 = "85bebf486af24792085f769afa46717d"


def _evidence(root: Path, n: int = 3, shade: int = 0) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (40, 30), (shade + i * 40, 60, 90)).save(root / f"p{i}.png")
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


def _audit(case: Path, action: str) -> list[dict[str, object]]:
    """The details of the audit rows ``action`` (without the data digest some carry, which
    tests/test_data_digest.py checks)."""
    out = [json.loads(r["details"]) for r in
           rows(case, "SELECT details FROM audit WHERE action=? ORDER BY seq", (action,))]
    for d in out:
        d.pop("data_digest", None)
    return out


def _gunzip(src: Path, dest: Path) -> Path:
    with open(dest, "wb") as out:
        subprocess.run(["gzip", "-dc", str(src)], stdout=out, check=True)
    return dest


def _tool_digest(tool: str, path: Path) -> str:
    """The digest by an independent tool (coreutils md5sum/sha1sum)."""
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


# -- item 4: a case inside the evidence, evidence inside the case --------------------

def test_case_inside_the_evidence_is_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    (tmp_path / "evlink").symlink_to(ev)
    before = _tree(ev)
    for case in (ev, ev / "case", ev / "deeper" / "case", tmp_path / "evlink" / "case"):
        proc = run_triage("scan", str(ev), "--case", str(case), "-q", "--no-match")
        assert proc.returncode == 2, (case, proc.stderr)
        assert "the case directory is inside the evidence" in proc.stderr
        assert "Traceback" not in proc.stderr
    # The evidence given through a link to it, the case given plainly: the same refusal.
    proc = run_triage("scan", str(tmp_path / "evlink"), "--case", str(ev / "c"), "-q")
    assert proc.returncode == 2 and "inside the evidence" in proc.stderr, proc.stderr
    assert _tree(ev) == before  # no case.sqlite, no lock, no folder


def test_evidence_inside_the_case_is_refused(tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(_evidence(tmp_path / "first"), case)
    inner = _evidence(case / "ev2", shade=100)
    before = {r["id"] for r in rows(case, "SELECT id FROM runs")}
    for evidence in (inner, case):
        proc = run_triage("scan", str(evidence), "--case", str(case), "-q", "--no-match")
        assert proc.returncode == 2, proc.stderr
        assert "inside the case directory" in proc.stderr or \
            "inside the evidence" in proc.stderr, proc.stderr
    # An image file inside the case (given through a link from outside) is refused too.
    shutil.copy(DFVFS / "ext2.E01", case / "copy.E01")
    (tmp_path / "img").symlink_to(case / "copy.E01")
    proc = run_triage("scan", str(tmp_path / "img"), "--case", str(case), "-q", "--no-match")
    assert proc.returncode == 2 and "inside the case directory" in proc.stderr, proc.stderr
    assert {r["id"] for r in rows(case, "SELECT id FROM runs")} == before


def _unshare_ok(tmp_path: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    d = tmp_path / "probe"
    d.mkdir()
    r = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind '{d}' '{d}'"],
                       capture_output=True, check=False)
    return r.returncode == 0


def _in_namespace(script: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("TRIAGE_INJECT_FAULT", None)
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


def test_bind_mounts_are_seen_through(tmp_path: Path) -> None:
    """No path string reveals these: the evidence folder bind-mounted elsewhere (found by
    device and inode), and a folder inside the case bind-mounted elsewhere and given as
    evidence (found by the mount's root in /proc/self/mountinfo)."""
    if not _unshare_ok(tmp_path):
        pytest.skip("bind mounts in a private namespace are not permitted here")
    py = f"'{sys.executable}' -m triage"
    ev = _evidence(tmp_path / "ev")
    bind = tmp_path / "bind"
    bind.mkdir()
    r = _in_namespace(f"mount --bind '{ev}' '{bind}' && "
                      f"{py} scan '{bind}' --case '{ev}/case' -q --no-match")
    assert r.returncode == 2 and "inside the evidence" in r.stderr, r.stderr
    assert not (ev / "case").exists()

    case = tmp_path / "case"
    scan_json(_evidence(tmp_path / "other"), case)
    sub = _evidence(case / "sub", shade=120)
    bind2 = tmp_path / "bind2"
    bind2.mkdir()
    r = _in_namespace(f"mount --bind '{sub}' '{bind2}' && "
                      f"{py} scan '{bind2}' --case '{case}' -q --no-match")
    assert r.returncode == 2 and "inside the case directory" in r.stderr, r.stderr
    assert len(rows(case, "SELECT id FROM evidence")) == 1


def test_fs_location_from_mountinfo(tmp_path: Path) -> None:
    """The mountinfo reading itself (proc(5) fields 3-5), on a written mountinfo: a bind
    mount of /data/case/sub at /mnt/b is inside /data/case; /mnt/c is not."""
    info = tmp_path / "mountinfo"
    info.write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                    "40 22 8:1 /data/case/sub /mnt/b rw - ext4 /dev/sda1 rw\n"
                    "41 22 8:2 / /mnt/c rw - ext4 /dev/sdb1 rw\n"
                    "42 22 8:1 /with\\040space /mnt/s rw - ext4 /dev/sda1 rw\n")
    mounts = placement._mounts(str(info))
    assert placement._fs_location("/mnt/b/x", mounts) == ("8:1", "/data/case/sub/x")
    assert placement._fs_location("/data/case", mounts) == ("8:1", "/data/case")
    assert placement._fs_location("/mnt/c/data/case", mounts) == ("8:2", "/data/case")
    assert placement._fs_location("/mnt/s", mounts) == ("8:1", "/with space")


# -- item 4: case details ----------------------------------------------------------

def test_case_details_never_change_silently(tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    scan_json(ev, case, "--case-number", "2026-17", "--examiner", "A. Examiner")
    proc = run_triage("scan", str(ev), "--case", str(case), "-q", "--no-match",
                      "--case-number", "2026-99", "--examiner", "B. Other")
    assert proc.returncode == 2, proc.stderr
    assert "'2026-17'" in proc.stderr and "'2026-99'" in proc.stderr
    assert "--update-case" in proc.stderr
    (info,) = rows(case, 'SELECT number, examiner, agency FROM "case"')
    assert (info["number"], info["examiner"]) == ("2026-17", "A. Examiner")
    assert len(rows(case, "SELECT id FROM runs")) == 1  # the refused scan left no run
    # The same details again, or none, are no change.
    assert "case_changes" not in scan_json(ev, case, "--case-number", "2026-17")
    # With --update-case: shown (old and new) on screen and in --json, audited.
    proc = run_triage("scan", str(ev), "--case", str(case), "--no-match", "--json",
                      "--case-number", "2026-99", "--agency", "Lab 3", "--update-case")
    assert proc.returncode == 0, proc.stderr
    assert "case case-number: '2026-17' -> '2026-99'" in proc.stderr
    assert "case agency: (none) -> 'Lab 3'" in proc.stderr
    changes = json.loads(proc.stdout)["case_changes"]
    assert changes == [{"field": "number", "old": "2026-17", "new": "2026-99"},
                       {"field": "agency", "old": None, "new": "Lab 3"}]
    assert _audit(case, "case.update")[-1] == {"old": {"number": "2026-17", "agency": None},
                                               "new": {"number": "2026-99",
                                                       "agency": "Lab 3"}}
    (info,) = rows(case, 'SELECT number, examiner, agency FROM "case"')
    assert tuple(info) == ("2026-99", "A. Examiner", "Lab 3")
    # A detail the case does not hold yet is recorded without --update-case, and said.
    proc = run_triage("scan", str(ev), "--case", str(case), "-q", "--no-match",
                      "--notes", "seized 1 Dec")
    assert proc.returncode == 0 and "case notes: (none) -> 'seized 1 Dec'" in proc.stderr


def test_new_evidence_in_an_existing_case_is_said(tmp_path: Path) -> None:
    case = tmp_path / "case"
    first = scan_json(_evidence(tmp_path / "ev1"), case)
    assert first["evidence"]["added"] is True and first["evidence"]["other_evidence"] == 0
    proc = run_triage("scan", str(_evidence(tmp_path / "ev2", shade=90)), "--case",
                      str(case), "--json", "--no-match")
    assert proc.returncode == 0, proc.stderr
    assert "adding new evidence to the case" in proc.stderr
    assert str(tmp_path / "ev1") in proc.stderr
    ev = json.loads(proc.stdout)["evidence"]
    assert ev["added"] is True and ev["other_evidence"] == 1 and ev["evidence_id"] == 2
    # Resuming evidence the case already holds is not "new evidence".
    proc = run_triage("scan", str(tmp_path / "ev1"), "--case", str(case), "-q", "--no-match")
    assert proc.returncode == 0 and "adding new evidence" not in proc.stderr
    # The same folder again through a link: new evidence to the case, and said to be the
    # same target.
    (tmp_path / "again").symlink_to(tmp_path / "ev1")
    proc = run_triage("scan", str(tmp_path / "again"), "--case", str(case), "-q",
                      "--no-match")
    assert proc.returncode == 0, proc.stderr
    assert "which this case already holds as" in proc.stderr


# -- item 4: exports ---------------------------------------------------------------

def test_default_export_names_never_overwrite(tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(_evidence(tmp_path / "ev"), case)
    outs = []
    for _ in range(3):
        proc = run_triage("report", str(case), "-f", "csv", "--json")
        assert proc.returncode == 0, proc.stderr
        outs.append(Path(json.loads(proc.stdout)["output"]))
    assert [p.name for p in outs] == ["report.csv", "report-2.csv", "report-3.csv"]
    for p in outs:
        assert (p.parent / (p.name + ".manifest.json")).is_file()
    # A manifest left without its export still reserves the name.
    (case / "exports" / "report-3.csv").unlink()
    proc = run_triage("report", str(case), "-f", "csv", "--json")
    assert json.loads(proc.stdout)["output"].endswith("report-4.csv")
    (case / "exports" / "report-3.csv.manifest.json").unlink()  # that export is gone
    proc = run_triage("verify", str(case))
    assert proc.returncode == 0, proc.stdout


def test_explicit_out_needs_force_and_replaces_the_manifest(tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(_evidence(tmp_path / "ev"), case)
    key = tmp_path / "k.pem"
    assert run_triage("key", "generate", "--out", str(key)).returncode == 0
    out = tmp_path / "hand-over" / "r.html"
    out.parent.mkdir()
    proc = run_triage("report", str(case), "--out", str(out), "--sign", str(key),
                      "--generated-at", "2026-12-01T10:00:00Z")
    assert proc.returncode == 0, proc.stderr
    manifest = out.with_name("r.html.manifest.json")
    sig = out.with_name("r.html.manifest.json.sig")
    kept = {p: p.read_bytes() for p in (out, manifest, sig)}
    proc = run_triage("report", str(case), "--out", str(out))
    assert proc.returncode == 2 and "--force" in proc.stderr, proc.stderr
    assert {p: p.read_bytes() for p in (out, manifest, sig)} == kept
    proc = run_triage("report", str(case), "--out", str(out), "--force",
                      "--generated-at", "2026-12-02T10:00:00Z", "--json")
    assert proc.returncode == 0, proc.stderr
    new = json.loads(manifest.read_text())
    assert new["files"][0]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert new["generated_utc"] == "2026-12-02T10:00:00Z"
    assert not sig.exists()  # the old signature was of the replaced manifest
    proc = run_triage("verify", str(case), "--manifest", str(manifest))
    assert proc.returncode == 0, proc.stdout


def test_force_replaces_only_an_export_never_the_case_or_the_evidence(tmp_path: Path) -> None:
    """--force replaces an earlier export, nothing else: not the case database, not a file
    of the evidence (or a new file inside it), not a manifest, not any other file."""
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    scan_json(ev, case)
    link = tmp_path / "ev-link"
    link.symlink_to(ev)
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    assert run_triage("report", str(case), "-f", "csv").returncode == 0
    kept_ev, kept_db = _tree(ev), (case / "case.sqlite").read_bytes()
    for out in (case / "case.sqlite", case / "case.lock", ev / "p0.png", ev / "sub" / "r.csv",
                ev / "r.csv", link / "r.csv", other,
                case / "exports" / "report.csv.manifest.json"):
        proc = run_triage("report", str(case), "-f", "csv", "--out", str(out), "--force")
        assert proc.returncode == 2, (out, proc.stdout, proc.stderr)
        assert str(out.name) in proc.stderr
    assert _tree(ev) == kept_ev and (case / "case.sqlite").read_bytes() == kept_db
    assert other.read_text() == "mine"
    assert run_triage("verify", str(case)).returncode == 0


# -- item 2 and the symlink bullet: images ----------------------------------------

def test_e01_through_a_link_without_extension(tmp_path: Path) -> None:
    """A link named ``img`` to a two-segment E01: read through the target (segments found
    beside it), both paths recorded, the stored MD5 in its column, the computed hashes
    (--verify-image) in theirs and in the audit trail, checked against md5sum/sha1sum of
    the raw image."""
    link = tmp_path / "img"
    link.symlink_to(DFVFS / "ext2.split.E01")
    case = tmp_path / "case"
    proc = run_triage("scan", str(link), "--case", str(case), "--no-match", "-q",
                      "--verify-image", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert "given through a symbolic link" in proc.stderr
    raw = _gunzip(DFVFS / "ext2.raw.gz", tmp_path / "ext2.raw")
    md5, sha1 = _tool_digest("md5sum", raw), _tool_digest("sha1sum", raw)
    assert md5 == EXT2_MD5
    assert summary["image_verification"] == {
        "result": "match", "computed_md5": md5, "computed_sha1": sha1,
        "stored_md5": EXT2_MD5, "stored_sha1": None}
    (ev,) = rows(case, "SELECT * FROM evidence")
    assert ev["path"] == str(link)
    assert (ev["stored_md5"], ev["stored_sha1"]) == (EXT2_MD5, None)
    assert (ev["computed_md5"], ev["computed_sha1"]) == (md5, sha1)
    desc = json.loads(ev["description"])
    assert desc["given_path"] == str(link)
    assert desc["resolved_path"] == str(DFVFS / "ext2.split.E01")
    assert [Path(s).name for s in desc["segments"]] == ["ext2.split.E01", "ext2.split.E02"]
    (audit,) = _audit(case, "image.verify")
    assert audit["evidence"] == 1 and audit["result"] == "match"
    assert audit["computed"] == {"md5": md5, "sha1": sha1}
    assert summary["evidence"]["resolved_path"] == str(DFVFS / "ext2.split.E01")
    got = {bytes(r["path"]): r["value"] for r in rows(
        case, "SELECT f.path, h.value FROM files f JOIN hashes h ON h.file_id=f.id "
              "WHERE h.algorithm='md5'")}
    assert got[b"a_directory/a_file"] == A_FILE_MD5
    # verify-image through the same link: read through the target, recorded for evidence 1.
    proc = run_triage("verify-image", str(link), "--case", str(case), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["path"], result["resolved_path"]) == (str(link),
                                                         str(DFVFS / "ext2.split.E01"))
    assert result["result"] == "match" and result["computed"]["sha1"] == sha1
    assert [a["evidence"] for a in _audit(case, "image.verify")] == [1, 1]


def test_folder_through_a_link_records_both_paths(tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "real" / "ev")
    link = tmp_path / "exhibit"
    link.symlink_to(ev)
    case = tmp_path / "case"
    summary = scan_json(link, case)
    (row,) = rows(case, "SELECT path, description FROM evidence")
    assert row["path"] == str(link)
    desc = json.loads(row["description"])
    assert (desc["given_path"], desc["resolved_path"]) == (str(link), str(ev))
    assert summary["entries"] == 3 and summary["evidence"]["resolved_path"] == str(ev)
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    proc = run_triage("scan", str(tmp_path / "dangling"), "--case", str(tmp_path / "c2"))
    assert proc.returncode == 4 and "a symbolic link to" in proc.stderr, proc.stderr
    assert not (tmp_path / "c2").exists()


def _tampered_e01(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An E01 made by ewfacquire (libewf) from the ext2 raw image, and a copy whose stored
    MD5 is changed: the first byte of the MD5 in the "digest" and "hash" sections, with
    their Adler-32 checksums recomputed (EWF specification, Joachim Metz, "Expert Witness
    Compression Format", sections "digest": MD5[16] SHA1[20] padding[40] checksum[4], and
    "hash": MD5[16] unknown[16] checksum[4], after a 76-byte section header)."""
    if not shutil.which("ewfacquire"):
        pytest.skip("ewfacquire (ewf-tools) is not installed")
    raw = _gunzip(DFVFS / "ext2.raw.gz", tmp_path / "src.raw")
    subprocess.run(["ewfacquire", "-u", "-d", "sha1", "-t", str(tmp_path / "good"),
                    str(raw)], capture_output=True, check=True, timeout=120)
    good = tmp_path / "good.E01"
    data = bytearray(good.read_bytes())
    for name, covered in ((b"digest", 76), (b"hash", 32)):
        at = data.find(name.ljust(16, b"\0")) + 76
        assert at > 76, name
        data[at] ^= 0xFF
        data[at + covered:at + covered + 4] = struct.pack(
            "<I", zlib.adler32(bytes(data[at:at + covered])))
    bad = tmp_path / "bad.E01"
    bad.write_bytes(bytes(data))
    return raw, good, bad


def test_verify_image_records_and_says_the_verdict(tmp_path: Path) -> None:
    raw, good, bad = _tampered_e01(tmp_path)
    md5, sha1 = _tool_digest("md5sum", raw), _tool_digest("sha1sum", raw)
    case = tmp_path / "case"
    proc = run_triage("scan", str(good), "--case", str(case), "--no-match", "-q")
    assert proc.returncode == 0, proc.stderr
    (ev,) = rows(case, "SELECT stored_md5, stored_sha1, computed_md5 FROM evidence")
    assert tuple(ev) == (md5, sha1, None)  # ewfacquire's own hashes, stored at acquisition
    proc = run_triage("verify-image", str(good), "--case", str(case))
    assert proc.returncode == 0, proc.stderr
    assert "VERIFIED" in proc.stdout and "evidence 1" in proc.stdout
    (ev,) = rows(case, "SELECT computed_md5, computed_sha1 FROM evidence")
    assert tuple(ev) == (md5, sha1)
    # An image that is not evidence of the case: audited only, no evidence row touched.
    proc = run_triage("verify-image", str(raw), "--case", str(case))
    assert "audit trail only" in proc.stdout, proc.stdout
    results = [(a["evidence"], a["result"]) for a in _audit(case, "image.verify")]
    assert results == [(1, "match"), (None, "no stored hash")]
    # The tampered copy: scanned with --verify-image, the mismatch is said, exit 7.
    case2 = tmp_path / "case2"
    proc = run_triage("scan", str(bad), "--case", str(case2), "--no-match", "-q",
                      "--verify-image")
    assert proc.returncode == 7, proc.stderr
    assert "MISMATCH" in proc.stdout
    (ev,) = rows(case2, "SELECT stored_md5, computed_md5, computed_sha1 FROM evidence")
    assert ev["stored_md5"] != md5 and (ev["computed_md5"], ev["computed_sha1"]) == (md5, sha1)
    # A raw image: nothing stored; the computed hashes are still recorded.
    case3 = tmp_path / "case3"
    summary = scan_json(raw, case3, "--verify-image")
    assert summary["image_verification"]["result"] == "no stored hash"
    # Nothing to verify against: exit 8, as verify-image says (a gap in what was checked).
    proc = run_triage("scan", str(raw), "--case", str(tmp_path / "case4"), "--no-match",
                      "-q", "--verify-image")
    assert proc.returncode == 8, proc.stderr
    (ev,) = rows(case3, "SELECT stored_md5, computed_md5 FROM evidence")
    assert tuple(ev) == (None, md5)


def test_stored_hashes_filled_in_on_resume_of_an_older_case(tmp_path: Path) -> None:
    """A case made before the stored hashes had their columns: the resume fills them in,
    audited."""
    case = tmp_path / "case"
    scan_json(DFVFS / "ext2.E01", case)
    simulate(case, "UPDATE evidence SET stored_md5=NULL, stored_sha1=NULL",
             tables=("evidence",))
    scan_json(DFVFS / "ext2.E01", case)
    (ev,) = rows(case, "SELECT stored_md5 FROM evidence")
    assert ev["stored_md5"] == EXT2_MD5
    assert _audit(case, "evidence.stored_hashes")[0]["stored_md5"] == EXT2_MD5


# -- item 6: terminal ----------------------------------------------------------------

def test_summary_says_it_resumed_and_what_was_new(tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev", n=4)
    case = tmp_path / "case"
    first = scan_json(ev, case)["evidence"]
    assert first["new_entries"] == 4 and first["pending_entries"] == 4
    assert first["resumed_run"] is None and first["earlier_entries"] == 0
    proc = run_triage("scan", str(ev), "--case", str(case), "--no-match")
    assert proc.returncode == 0, proc.stderr
    assert "resuming the scan of run 1: 4 entries were finished by earlier runs" in \
        proc.stderr
    text = re.sub(r"\s+", " ", proc.stdout)
    assert "resumed │ the scan listed by run 1" in text
    assert "new entries (listed by this run) │ 0" in text
    again = scan_json(ev, case)["evidence"]
    assert (again["resumed_run"], again["new_entries"], again["earlier_entries"],
            again["pending_entries"]) == (1, 0, 4, 0)


def test_thresholds_table_and_no_empty_tables(tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(_evidence(tmp_path / "ev"), case)
    store = tmp_path / "store.sqlite"
    imported = run_triage("hashset", "import", str(TESTDATA / "hashsets" / "md5deep" /
                                                   "md5deep.txt"), "--store", str(store))
    assert imported.returncode == 0, imported.stderr
    proc = run_triage("match", str(case), "--store", str(store), "--pdq", "20")
    assert proc.returncode == 0, proc.stderr
    assert "{" not in proc.stdout  # no Python dict
    text = re.sub(r"\s+", " ", proc.stdout)
    assert "near-match thresholds" in text and "│ pdq │ 20 │ 50 │" in text
    assert "│ phash │ 10 │ - │" in text
    assert "hits by category" not in text and "KNOWN-file sets" not in text
    assert "no hits in 1 set(s)" in text


def _help(*args: str) -> str:
    proc = run_triage(*args, "--help", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_fits_80_columns_with_every_option_name_whole() -> None:
    import typer

    from triage.cli import app

    command = typer.main.get_command(app)
    for name in ("scan", "report", "verify-image", "match"):
        text = _help(name)
        assert max(len(line) for line in text.splitlines()) <= 80, name
        assert "…" not in text, name
        # The root group adds most commands on demand (cli._LazyCommands): ask it by name.
        sub = command.get_command(typer.Context(command), name)  # type: ignore[attr-defined]
        assert sub is not None, name
        params = sub.params
        for p in params:
            for opt in (*p.opts, *p.secondary_opts):
                if opt.startswith("-"):
                    assert re.search(rf"(^|[\s,/]){re.escape(opt)}([\s,=]|$)", text,
                                     re.M), (name, opt)


def _exit_codes(text: str) -> set[int]:
    section = re.sub(r"\s+", " ", text.split("Exit codes:", 1)[1]).strip()
    return {int(m) for m in re.findall(r"(?:^|; )(\d+) ", section)}


def test_each_command_lists_only_its_own_exit_codes() -> None:
    assert _exit_codes(_help("scan")) == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130}
    assert _exit_codes(_help("match")) == {0, 1, 2, 5, 6, 7, 130}  # 7: a case edited outside triage
    assert _exit_codes(_help("report")) == {0, 1, 2, 5, 7, 130}
    assert _exit_codes(_help("verify")) == {0, 1, 2, 5, 7, 130}
    assert _exit_codes(_help("verify-image")) == {0, 1, 2, 4, 5, 7, 8, 130}
    assert _exit_codes(_help()) == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130}
    assert "quarantined" not in _help("report") and "quarantined" not in _help("verify")
