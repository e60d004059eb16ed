-- The case database. One file per case, created explicitly (never inferred).
-- This script always creates the NEWEST schema version (CASE_SCHEMA in case.py); older
-- cases are brought forward by the migrations listed there.
-- Times are UTC ISO-8601 strings ("2026-11-28T15:33:09.123456Z"); raw file-system values
-- are kept beside them in *_raw columns. Paths are kept as the exact bytes plus an
-- escaped, printable display form.

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS "case" (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    number      TEXT,
    examiner    TEXT,
    agency      TEXT,
    notes       TEXT,
    created_utc TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS runs (
    id            INTEGER PRIMARY KEY,
    command       TEXT NOT NULL,          -- scan, match, ...
    arguments     TEXT NOT NULL,          -- JSON list of argv
    options       TEXT NOT NULL,          -- JSON object of effective options
    tool_version  TEXT NOT NULL,
    versions      TEXT NOT NULL,          -- JSON: python, libraries, libmagic, ...
    host          TEXT NOT NULL,
    user          TEXT NOT NULL,
    started_utc   TEXT NOT NULL,
    ended_utc     TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
    summary       TEXT                    -- JSON summary written at the end
) STRICT;

CREATE TABLE IF NOT EXISTS evidence (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL,          -- display form of the path given by the examiner
    path_bytes    BLOB NOT NULL,
    source_type   TEXT NOT NULL,          -- directory, raw, e01, ...
    size          INTEGER,
    description   TEXT NOT NULL,          -- JSON: partitions, file systems, mount flags, ...
    stored_md5    TEXT,
    stored_sha1   TEXT,
    computed_md5  TEXT,
    computed_sha1 TEXT,
    added_run_id  INTEGER NOT NULL REFERENCES runs(id),
    identity      TEXT,                   -- JSON: what identifies the evidence (schema 2):
                                          -- a folder's device, inode, file-system id/UUID
                                          -- and listing; an image's size and fingerprint
    UNIQUE (path_bytes, source_type)
) STRICT;

CREATE TABLE IF NOT EXISTS files (
    id              INTEGER PRIMARY KEY,
    evidence_id     INTEGER NOT NULL REFERENCES evidence(id),
    identity        TEXT NOT NULL,        -- stable identity within the evidence
    parent_id       INTEGER REFERENCES files(id),  -- container parent (archives)
    path            BLOB NOT NULL,        -- exact bytes, relative to the evidence root
    display_path    TEXT NOT NULL,        -- escaped printable form of path
    kind            TEXT NOT NULL,        -- file, directory, symlink, fifo, socket, ...
    size            INTEGER,
    mtime_utc       TEXT,
    atime_utc       TEXT,
    ctime_utc       TEXT,
    crtime_utc      TEXT,
    times_raw       TEXT,                 -- JSON of the raw file-system values
    allocated       INTEGER NOT NULL DEFAULT 1,
    deleted         INTEGER NOT NULL DEFAULT 0,
    inode           INTEGER,
    link_target     BLOB,
    link_display    TEXT,
    mime            TEXT,
    media_kind      TEXT,                 -- image, video, audio, other
    extension       TEXT,
    locator         TEXT,                 -- JSON: how a worker finds the content again
    notes           TEXT,                 -- JSON list, e.g. "content may be overwritten"
    ext_mismatch    INTEGER,              -- 1 when the name's extension contradicts content
    read_status     TEXT,                 -- full, partial, none
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'done', 'skipped', 'incomplete', 'error',
                                      'quarantined')),
    status_stage    TEXT,                 -- stage of the error, or why skipped
    status_reason   TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,  -- times handed to a worker
    run_id          INTEGER REFERENCES runs(id),
    -- workers that died on it; only these count towards quarantine (schema 3)
    worker_crashes  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (evidence_id, identity)
) STRICT;

CREATE TABLE IF NOT EXISTS images (
    file_id       INTEGER PRIMARY KEY REFERENCES files(id),
    format        TEXT,
    width         INTEGER,
    height        INTEGER,
    mode          TEXT,
    frames        INTEGER,
    decoded_width  INTEGER,               -- size actually decoded (JPEG draft mode)
    decoded_height INTEGER,
    preprocessing TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS hashes (
    file_id       INTEGER NOT NULL REFERENCES files(id),
    algorithm     TEXT NOT NULL,
    value         TEXT NOT NULL,          -- canonical lower-case hex
    quality       INTEGER,                -- PDQ quality (0-100)
    preprocessing TEXT,                   -- perceptual hashes: how pixels were prepared
    PRIMARY KEY (file_id, algorithm)
) STRICT;

CREATE TABLE IF NOT EXISTS errors (
    id          INTEGER PRIMARY KEY,
    file_id     INTEGER REFERENCES files(id),
    run_id      INTEGER REFERENCES runs(id),
    stage       TEXT NOT NULL,            -- enumerate, read, identify, decode, hash, worker, ...
    error_class TEXT NOT NULL,
    message     TEXT NOT NULL,
    time_utc    TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS hash_sets_used (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    set_id        TEXT NOT NULL,          -- stable id of the set in the store
    name          TEXT NOT NULL,
    version       TEXT,
    format        TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    entry_count   INTEGER NOT NULL,
    category_map  TEXT,                   -- JSON mapping used at import
    known         INTEGER NOT NULL DEFAULT 0,  -- NSRL-style "known file" set
    UNIQUE (run_id, set_id)
) STRICT;

CREATE TABLE IF NOT EXISTS matches (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs(id),
    file_id         INTEGER NOT NULL REFERENCES files(id),
    set_id          TEXT NOT NULL,
    set_name        TEXT NOT NULL,
    set_version     TEXT,
    algorithm       TEXT NOT NULL,
    match_type      TEXT NOT NULL CHECK (match_type IN ('exact', 'near')),
    file_value      TEXT NOT NULL,
    known_value     TEXT NOT NULL,
    distance        INTEGER NOT NULL,
    threshold       INTEGER,
    category        TEXT,                 -- label after the set's category mapping
    category_raw    TEXT,                 -- the source's own value
    series          TEXT,
    victim_identified   INTEGER,
    offender_identified INTEGER,
    known           INTEGER NOT NULL DEFAULT 0,  -- hit in a "known files" set (NSRL)
    entry_ref       TEXT,                 -- record id in the source (MediaID, line no.)
    -- the matched set entry's name and other fields, JSON (schema 6, issue 14)
    entry_name      TEXT,
    entry_fields    TEXT,
    UNIQUE (run_id, file_id, set_id, algorithm, known_value)
) STRICT;

-- Append-only, hash-chained audit trail: row_hash = sha256(prev_hash || canonical row).
CREATE TABLE IF NOT EXISTS audit (
    seq          INTEGER PRIMARY KEY,
    time_utc     TEXT NOT NULL,
    user         TEXT NOT NULL,
    host         TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    action       TEXT NOT NULL,
    details      TEXT NOT NULL,           -- canonical JSON
    prev_hash    TEXT NOT NULL,
    row_hash     TEXT NOT NULL
) STRICT;

CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
