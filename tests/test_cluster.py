"""``triage scan --cluster`` (issue 19) against a real Dask scheduler and real workers on
127.0.0.1, each its own process (``dask scheduler``, ``dask worker``), as a lab runs them.

The acceptance of the issue: a cluster scan equals a local scan row for row apart from the
column naming the worker; killing a worker mid-scan loses nothing; an injected crash on a
worker quarantines exactly that file; a version mismatch is refused; the offline guard
holds on both sides; no file content crosses to Dask.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_support import Cluster
from tests.support import ROOT, TESTDATA, compare_scans, rows, run_triage

pytest.importorskip("distributed")

SMALL = TESTDATA / "media" / "small"


cs = compare_scans()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.add_worker("w1")
        c.add_worker("w2")
        c.wait_for_workers(2)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def local_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small-media corpus scanned by this machine's own workers (the reference)."""
    case = tmp_path_factory.mktemp("local") / "case"
    proc = run_triage("scan", str(SMALL), "--case", str(case), "--no-match", "-q",
                      "--jobs", "2")
    assert proc.returncode in (0, 3, 8), proc.stderr
    return case


def assert_rows_equal(local: Path, other: Path, also: str = "") -> None:
    """Every table equal apart from the worker column and the run's options (and the
    changes ``also`` accepts, compare_scans' intended-changes form)."""
    rules = cs.parse_intended("files.processed_by: changed\nruns.options: changed\n" + also)
    report = cs.Report("local", "cluster")
    cs.compare_cases("small", local / "case.sqlite", other / "case.sqlite", rules, report)
    assert report.equal, cs.format_text(report)
    counts = report.targets["small"]["rows"]
    assert counts["files"] > 40 and counts["hashes"] > 100, counts


def cluster_scan(cluster: Cluster, evidence: Path, case: Path, *extra: str,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_triage("scan", str(evidence), "--case", str(case), "--no-match", "-q",
                      "--cluster", cluster.address, *extra, env=env)


def test_cluster_scan_equals_local_scan(cluster: Cluster, local_small: Path,
                                        tmp_path: Path) -> None:
    case = tmp_path / "case"
    proc = cluster_scan(cluster, SMALL, case, "--cluster-batch", "4", "--json")
    assert proc.returncode in (0, 3, 8), proc.stderr
    assert_rows_equal(local_small, case)
    done = rows(case, "SELECT processed_by, parent_id FROM files WHERE kind='file' "
                      "AND status != 'pending'")
    # Every file and every item found inside one names the worker that processed it.
    assert all(r["processed_by"] for r in done), [dict(r) for r in done]
    assert any(r["parent_id"] is not None for r in done)  # items inside (gzip members)
    names = {r["processed_by"].split(" ")[0] for r in done}
    assert names == {"w1", "w2"}, names
    options = json.loads(rows(case, "SELECT options FROM runs")[0]["options"])
    assert options["cluster"]["address"] == cluster.address
    # The summary says what each worker did (and the run row keeps it).
    used = json.loads(proc.stdout)["cluster"]
    assert used["address"] == cluster.address and used["batches_lost"] == 0
    assert sum(used["files_by_worker"].values()) == len(
        rows(case, "SELECT id FROM files WHERE parent_id IS NULL"))
    assert {w.split(" ")[0] for w in used["files_by_worker"]} == {"w1", "w2"}
    # The digests are the files' own (an independent tool: sha256sum).
    jpeg = SMALL / "jpeg.jpg"
    want = subprocess.run(["sha256sum", str(jpeg)], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    got = rows(case, "SELECT h.value FROM hashes h JOIN files f ON f.id=h.file_id "
                     "WHERE f.path=? AND h.algorithm='sha256'", (b"jpeg.jpg",))
    assert got[0]["value"] == want


def test_offline_guard_on_both_sides(cluster: Cluster, tmp_path: Path) -> None:
    host, port = cluster.address.removeprefix("tcp://").rsplit(":", 1)
    # A triage process (supervisor, node, worker) cannot reach the scheduler...
    probe = ("import socket, sys, triage\n"
             "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)\n"
             "except PermissionError as e:\n    print('refused', e)\n")
    out = subprocess.run([sys.executable, "-c", probe, host, port], capture_output=True,
                         text=True, check=True, env=cluster.env).stdout
    assert out.startswith("refused triage is offline")
    # ... and the Dask-facing processes never import triage, so their connections work.
    thin = ("import sys, triage_dask.client, triage_dask.node\n"
            "assert not [m for m in sys.modules if m == 'triage' or m.startswith('triage.')]\n"
            "from distributed import Client\n"
            "c = Client(sys.argv[1], timeout=30)\n"
            "print(sorted(c.run(lambda: 'triage' in sys.modules).values()))\n"
            "c.close()\n")
    out = subprocess.run([sys.executable, "-c", thin, cluster.address], capture_output=True,
                         text=True, check=True, env=cluster.env, timeout=120).stdout
    assert out.strip() == "[False, False]", out  # after the scans of this module too
    # Each worker's node reports its guard on when it connects (ClusterPool refuses
    # otherwise): a scan that works proves it.
    proc = cluster_scan(cluster, TESTDATA / "media" / "pdq", tmp_path / "one")
    assert proc.returncode == 0, proc.stderr


def test_no_file_content_goes_to_dask(cluster: Cluster, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything the supervisor hands to the Dask client and gets back (batches, setup,
    results: all that the client passes to and from Dask) holds no 16-byte run of any file's
    content. The files are random bytes, pictures and text, so a leak cannot hide."""
    import random

    from triage import scan as scan_module
    from triage_dask import frames

    evidence = tmp_path / "ev"
    evidence.mkdir()
    rng = random.Random(19)
    for i in range(12):
        (evidence / f"blob{i}.bin").write_bytes(rng.randbytes(3000 + 97 * i))
        (evidence / f"note{i}.txt").write_text(
            " ".join(f"{rng.getrandbits(64):x}" for _ in range(200)))
    for src in ("jpeg.jpg", "png-transparent.png", "gif.gif"):
        shutil.copy(SMALL / src, evidence / src)
    windows: set[bytes] = set()
    for f in evidence.iterdir():
        data = f.read_bytes()
        windows.update(data[i:i + 16] for i in range(len(data) - 15))

    seen: list[bytes] = []
    real_write, real_read = frames.write, frames.read

    def write(stream: Any, message: dict[str, Any]) -> None:
        seen.append(repr(message).encode() + b"".join(
            v for v in message.values() if isinstance(v, bytes)))
        real_write(stream, message)

    def read(stream: Any) -> dict[str, Any]:
        message = real_read(stream)
        seen.append(repr(message).encode() + b"".join(
            v for v in message.values() if isinstance(v, bytes)))
        return message

    monkeypatch.setattr(frames, "write", write)
    monkeypatch.setattr(frames, "read", read)
    options = scan_module.ScanOptions(match=False, cluster=cluster.address, cluster_batch=5)
    summary = scan_module.scan(str(evidence), tmp_path / "case", options)
    assert summary.counts.entries == 27 and summary.counts.by_outcome["error"] == 0
    traffic = b"".join(seen)
    assert len(traffic) > 20_000  # batches and results went through
    leaks = [i for i in range(len(traffic) - 15) if traffic[i:i + 16] in windows]
    assert not leaks, traffic[leaks[0]:leaks[0] + 16]


def test_injected_crash_quarantines_exactly_that_file(cluster: Cluster, local_small: Path,
                                                      tmp_path: Path) -> None:
    case = tmp_path / "case"
    target = b"png-transparent.png"
    proc = cluster_scan(cluster, SMALL, case, "--cluster-batch", "4",
                        env={"TRIAGE_INJECT_FAULT": "decode:segfault:png-transparent.png"})
    assert proc.returncode == 3, proc.stderr
    crashed = rows(case, "SELECT path, status, worker_crashes, status_reason FROM files "
                         "WHERE worker_crashes > 0 OR status = 'quarantined'")
    assert [(bytes(r["path"]), r["status"], r["worker_crashes"]) for r in crashed] == [
        (target, "quarantined", 2)], [dict(r) for r in crashed]
    assert "SIGSEGV" in crashed[0]["status_reason"]
    # Every other file ended as in the local scan.
    others = rows(case, "SELECT path, status FROM files WHERE path != ?", (target,))
    local = {bytes(r["path"]): r["status"] for r in rows(
        local_small, "SELECT path, status FROM files WHERE path != ?", (target,))}
    assert {bytes(r["path"]): r["status"] for r in others} == local
    assert local and rows(local_small, "SELECT status FROM files WHERE path=?",
                          (target,))[0]["status"] == "done"


def test_version_mismatch_is_refused(tmp_path: Path) -> None:
    """A worker running another triage version is refused before any file is sent: exit 9,
    naming the worker and the difference; the files stay pending for a later scan."""
    other = tmp_path / "other-install"
    for package in ("triage", "hashsets", "triage_dask"):
        shutil.copytree(ROOT / package, other / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "triage" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"',
                                             '__version__ = "0.1.0+other"'))
    c = Cluster(tmp_path / "dask")
    try:
        c.add_worker("odd", pythonpath=str(other))
        c.wait_for_workers(1)
        case = tmp_path / "case"
        proc = run_triage("scan", str(SMALL), "--case", str(case), "--no-match", "-q",
                          "--cluster", c.address)
    finally:
        c.stop()
    assert proc.returncode == 9, proc.stderr
    assert "worker odd" in proc.stderr
    assert "triage: 0.1.0 on the supervisor, 0.1.0+other here" in proc.stderr
    statuses = {r["status"] for r in rows(case, "SELECT status FROM files WHERE "
                                                "kind='file'")}
    assert statuses == {"pending"}


def test_node_with_a_long_tmpdir_works_and_one_without_children_refuses(
        tmp_path: Path, scan_tmpdir: Path) -> None:
    """A worker machine whose TMPDIR is too long for the forkserver's Unix socket scans
    normally (the socket goes to a short private folder; was: every file quarantined). A
    node whose isolated children cannot run refuses the scan before any file is sent: exit
    9 with the reason, files still pending (was: quarantined)."""
    long = scan_tmpdir / ("d" * 100)
    long.mkdir()
    ev = tmp_path / "ev"
    ev.mkdir()
    for name in ("small/bmp.bmp", "small/README.md", "imagehash/imagehash.png"):
        shutil.copy(TESTDATA / "media" / name, ev)
    c = Cluster(tmp_path / "dask")
    try:
        c.add_worker("longtmp", env={"TMPDIR": str(long)})
        c.wait_for_workers(1)
        ok = run_triage("scan", str(ev), "--case", str(tmp_path / "case"), "--no-match",
                        "-q", "--json", "--cluster", c.address)
        refused = run_triage("scan", str(ev), "--case", str(tmp_path / "case2"),
                             "--no-match", "-q", "--cluster", c.address,
                             env={"TRIAGE_INJECT_FAULT": "children:exit:*"})
    finally:
        c.stop()
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["by_status"] == {"done": 3}
    assert refused.returncode == 9, refused.stderr
    assert "worker longtmp" in refused.stderr
    assert "isolated worker processes cannot run on this machine" in refused.stderr
    statuses = {r["status"] for r in rows(tmp_path / "case2", "SELECT status FROM files")}
    assert statuses == {"pending"}


def test_bad_path_map_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    proc = cluster_scan(cluster, SMALL, tmp_path / "case", "--path-map",
                        f"{SMALL}={tmp_path / 'not-mounted'}")
    assert proc.returncode == 9, proc.stderr
    assert "cannot read the evidence at" in proc.stderr and "not-mounted" in proc.stderr
    proc = run_triage("scan", str(SMALL), "--case", str(tmp_path / "c2"), "--path-map",
                      "a=b")
    assert proc.returncode == 2 and "--path-map is for --cluster" in proc.stderr


def test_path_map(cluster: Cluster, local_small: Path, tmp_path: Path) -> None:
    """The workers read the evidence where --path-map says: here a copy with the same
    bytes and times but other inode numbers, as another machine's mount of a NAS share
    would number them (CIFS without serverino, FUSE)."""
    mount = tmp_path / "nas"
    shutil.copytree(SMALL, mount, symlinks=True)  # copy2: times kept to the nanosecond
    case = tmp_path / "case"
    proc = cluster_scan(cluster, SMALL, case, "--path-map", f"{SMALL}={mount}")
    assert proc.returncode in (0, 3, 8), proc.stderr
    assert_rows_equal(local_small, case)
    options = json.loads(rows(case, "SELECT options FROM runs")[0]["options"])
    assert [str(SMALL), str(mount)] in options["cluster"]["path_map"]


def test_path_map_applies_to_a_linked_path(tmp_path: Path) -> None:
    """Evidence given through a symbolic link is read at its target: a map written for the
    link's path applies to the target too."""
    from triage.cluster import map_path, parse_path_map

    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    pairs = parse_path_map([f"{link}=/mnt/nas"])
    assert map_path(str(target / "ev"), pairs) == "/mnt/nas/ev"
    assert map_path(str(link / "ev"), pairs) == "/mnt/nas/ev"
    assert map_path(str(tmp_path / "other"), pairs) == str(tmp_path / "other")


def _nodes_left(cluster: Cluster) -> list[list[str]]:
    import psutil

    left = []
    for w in cluster.workers.values():
        for c in psutil.Process(w.pid).children(recursive=True):
            try:
                if c.status() != psutil.STATUS_ZOMBIE:
                    left.append(c.cmdline())
            except psutil.NoSuchProcess:
                pass
    return left


def test_no_node_is_left_on_the_workers(cluster: Cluster, tmp_path: Path) -> None:
    """When a scan ends its nodes (and their worker processes, which hold the evidence
    open) are closed on every worker."""
    proc = cluster_scan(cluster, TESTDATA / "media" / "pdq", tmp_path / "case")
    assert proc.returncode == 0, proc.stderr
    # The scan waits at most 10 s for the close (a frozen worker must not hold it); on a
    # loaded machine a node may still be exiting then, so give them a little while.
    deadline = time.monotonic() + 30
    while _nodes_left(cluster) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _nodes_left(cluster) == []


def _wait_done(case: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 120
               ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the scan ended before it could be interrupted"
        try:
            done = rows(case, "SELECT count(*) AS n FROM files WHERE status='done' AND "
                              "kind='file'")[0]["n"]
        except sqlite3.Error:
            done = 0
        if done >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} files done in {timeout} s")


def _slow_scan(address: str, case: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TRIAGE_INJECT_FAULT="read:slow=0.4:*")
    return subprocess.Popen([sys.executable, "-m", "triage", "scan", str(SMALL), "--case",
                             str(case), "--no-match", "-q", "--cluster", address,
                             "--cluster-batch", "2", "--jobs", "1", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def test_killing_a_worker_mid_scan_loses_nothing(local_small: Path, tmp_path: Path) -> None:
    c = Cluster(tmp_path / "dask")
    try:
        c.add_worker("k1")
        c.add_worker("k2")
        c.wait_for_workers(2)
        case = tmp_path / "case"
        scan = _slow_scan(c.address, case)
        _wait_done(case, 6, scan)
        c.workers["k1"].send_signal(signal.SIGKILL)  # the machine disappears
        _, err = scan.communicate(timeout=300)
        assert scan.returncode in (0, 3, 8), err.decode()
    finally:
        c.stop()
    done = rows(case, "SELECT processed_by FROM files WHERE kind='file' AND status='done'")
    assert {r["processed_by"].split(" ")[0] for r in done} == {"k1", "k2"}
    # Nothing lost, nothing counted against a file: the rows are a local scan's.
    assert_rows_equal(local_small, case)
    assert not rows(case, "SELECT id FROM files WHERE worker_crashes > 0")


def test_kill_of_the_supervisor_resumes(cluster: Cluster, local_small: Path,
                                        tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan = _slow_scan(cluster.address, case)
    _wait_done(case, 6, scan)
    scan.send_signal(signal.SIGKILL)
    scan.wait()
    # Its nodes were busy when it died: they close themselves once idle (docs/cluster.md).
    deadline = time.monotonic() + 60
    while _nodes_left(cluster) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _nodes_left(cluster) == []
    assert rows(case, "SELECT count(*) AS n FROM files WHERE status='pending' AND "
                      "kind='file'")[0]["n"] > 0
    proc = cluster_scan(cluster, SMALL, case, "--cluster-batch", "2", "--jobs", "1")
    assert proc.returncode in (0, 3, 8), proc.stderr
    # The resumed case has two runs (the first interrupted), the second run's evidence
    # warning, and the files in flight at the kill were handed out twice: nothing else
    # differs.
    assert_rows_equal(local_small, case, "runs: added\nruns.status: changed\n"
                      "errors: added for rows matching evidence \\| Warning\n"
                      "files.attempts: changed\n")
    assert not rows(case, "SELECT id FROM files WHERE worker_crashes > 0")


def _tls_files(folder: Path) -> dict[str, Path]:
    """A lab's own CA and one certificate for 127.0.0.1 signed by it (cryptography)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, node_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    files = {"ca": folder / "ca.pem", "cert": folder / "node.pem", "key": folder / "node.key"}
    files["ca"].write_bytes(cert("lab CA", ca_key, "lab CA", ca_key, True).public_bytes(
        serialization.Encoding.PEM))
    files["cert"].write_bytes(cert("127.0.0.1", node_key, "lab CA", ca_key, False)
                              .public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(node_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return files


def test_tls_between_nodes(tmp_path: Path) -> None:
    """A scheduler and worker that speak TLS only: the scan connects with the certificates
    given through Dask's own configuration (docs/cluster.md, "TLS"), and is refused without
    them (exit 9, nothing lost)."""
    tls = _tls_files(tmp_path)
    flags = ("--protocol", "tls", "--tls-ca-file", str(tls["ca"]), "--tls-cert",
             str(tls["cert"]), "--tls-key", str(tls["key"]))
    config = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
              "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(tls["ca"]),
              "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(tls["cert"]),
              "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(tls["key"])}
    c = Cluster(tmp_path / "dask", extra=flags)
    try:
        c.add_worker("t1")
        c.wait_for_workers(1, env=config)
        assert c.address.startswith("tls://")
        bare = run_triage("scan", str(TESTDATA / "media" / "pdq"), "--case",
                          str(tmp_path / "bare"), "--no-match", "-q", "--cluster", c.address)
        case = tmp_path / "case"
        proc = run_triage("scan", str(TESTDATA / "media" / "pdq"), "--case", str(case),
                          "--no-match", "-q", "--cluster", c.address, env=config)
    finally:
        c.stop()
    assert bare.returncode == 9 and "cannot connect to the Dask scheduler" in bare.stderr
    assert proc.returncode == 0, proc.stderr
    assert {r["processed_by"].split(" ")[0] for r in rows(
        case, "SELECT processed_by FROM files WHERE kind='file'")} == {"t1"}


def test_lost_workers_and_scheduler_stop_the_scan(local_small: Path, tmp_path: Path) -> None:
    """No worker left, or no scheduler: the scan stops after --cluster-wait seconds with
    exit 9 and a message; nothing is counted against any file; the same command on a
    cluster that works finishes with a local scan's rows."""
    case = tmp_path / "case"
    c = Cluster(tmp_path / "dask")
    try:
        c.add_worker("x1")
        c.wait_for_workers(1)
        scan = _slow_scan(c.address, case, "--cluster-wait", "5")
        _wait_done(case, 3, scan)
        c.workers["x1"].send_signal(signal.SIGKILL)
        _, err = scan.communicate(timeout=180)
        assert scan.returncode == 9, err.decode()
        assert "no Dask worker (or no scheduler) for 5 s" in err.decode()
        c.add_worker("x2")
        c.wait_for_workers(1)
        scan = _slow_scan(c.address, case, "--cluster-wait", "5")
        _wait_done(case, 8, scan)
        c.procs[0].send_signal(signal.SIGKILL)  # the scheduler
        _, err = scan.communicate(timeout=180)
        assert scan.returncode == 9, err.decode()
    finally:
        c.stop()
    assert not rows(case, "SELECT id FROM files WHERE worker_crashes > 0")
    assert rows(case, "SELECT count(*) AS n FROM files WHERE status='pending'")[0]["n"]
    d = Cluster(tmp_path / "dask2")
    try:
        d.add_worker("y1")
        d.wait_for_workers(1)
        proc = cluster_scan(d, SMALL, case)
    finally:
        d.stop()
    assert proc.returncode in (0, 3, 8), proc.stderr
    assert_rows_equal(local_small, case, "runs: added\nruns.status: changed\n"
                      "errors: added for rows matching evidence \\| Warning\n"
                      "files.attempts: changed\n")
    assert not rows(case, "SELECT id FROM files WHERE worker_crashes > 0")
