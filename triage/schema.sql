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
    -- the Dask worker that processed it (scan --cluster, schema 12); NULL: this machine
    processed_by    TEXT,
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

-- Videos (schema 6, issue 15): the first video stream's facts and its vPDQ frames.
CREATE TABLE IF NOT EXISTS videos (
    file_id          INTEGER PRIMARY KEY REFERENCES files(id),
    container        TEXT,                -- FFmpeg's format name (mov,mp4,m4a,3gp,3g2,mj2)
    codec            TEXT,
    width            INTEGER,
    height           INTEGER,
    frame_rate       REAL,                -- avg_frame_rate, else r_frame_rate (as vPDQ)
    duration         REAL,                -- seconds, from the container
    streams          INTEGER,
    video_streams    INTEGER,
    audio_streams    INTEGER,
    creation_time    TEXT,                -- container tag, as written in the file
    tags             TEXT,                -- JSON object: device and place tags kept
    frames_decoded   INTEGER NOT NULL,
    frames_hashed    INTEGER NOT NULL,
    seconds_per_hash REAL NOT NULL,       -- 0: every frame
    hashed_width     INTEGER,
    hashed_height    INTEGER,
    preprocessing    TEXT NOT NULL,
    stopped          TEXT                 -- the bound or problem that ended decoding early
) STRICT;

CREATE TABLE IF NOT EXISTS video_frames (
    file_id       INTEGER NOT NULL REFERENCES files(id),
    seq           INTEGER NOT NULL,       -- 0, 1, ... in frame order
    frame_number  INTEGER NOT NULL,       -- decoded frames counted from 0 (vPDQ)
    timestamp     REAL NOT NULL,          -- frame number / frame rate, seconds
    pdq           TEXT NOT NULL,
    quality       INTEGER NOT NULL,
    repeats       INTEGER NOT NULL,       -- consecutive hashed frames with this value
    PRIMARY KEY (file_id, seq)
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
    -- schema 8 (issue 14): which form of the picture matched (dihedral variant,
    -- unletterboxed; NULL for exact matches), the file value's quality, the hit's grade
    -- (exact, confirmed, review, unconfirmed), how the picture was decoded for the value
    -- (full, confirmed: draft candidate re-decoded at full size, draft: not confirmed) and
    -- how many files of the case matched the same set entry value in this run
    variant         TEXT,
    quality         INTEGER,
    grade           TEXT,
    decode          TEXT,
    files_same_value INTEGER,
    -- the matched set entry's name and other fields, JSON (schema 9, issue 14)
    entry_name      TEXT,
    entry_fields    TEXT,
    UNIQUE (run_id, file_id, set_id, algorithm, known_value)
) STRICT;

-- Video hits (schema 6, issue 15): the detail of a matches row of a video or a frame:
-- Meta's vPDQ rule with both percentages, its thresholds and the matched time ranges.
CREATE TABLE IF NOT EXISTS video_matches (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs(id),
    match_id         INTEGER NOT NULL REFERENCES matches(id),
    file_id          INTEGER NOT NULL REFERENCES files(id),
    kind             TEXT NOT NULL CHECK (kind IN ('video', 'frame', 'picture')),
    set_id           TEXT NOT NULL,
    known_video      TEXT,                -- the known video's name (video sets)
    query_percent    REAL,                -- 'video': share of this video's unique frames
    known_percent    REAL,                -- 'video': share of the known video's unique frames
    query_frames     INTEGER,
    known_frames     INTEGER,
    query_matched    INTEGER,
    known_matched    INTEGER,
    distance         INTEGER NOT NULL,    -- closest frame pair
    threshold        INTEGER NOT NULL,    -- frame distance threshold
    min_quality      INTEGER NOT NULL,
    query_threshold  REAL,
    known_threshold  REAL,
    compared_interval REAL,               -- 'video': seconds per frame both were compared at
    query_ranges     TEXT NOT NULL,       -- JSON [[start, end], ...] seconds in this file
    known_ranges     TEXT NOT NULL,       -- JSON, seconds in the known video ([] for pictures)
    UNIQUE (run_id, match_id)
) STRICT;

-- Items carved from a disk image's unallocated space, file slack or unpartitioned space
-- (schema 7, issue 17): where each lies. One row per carved item (a files row whose
-- parent is the area's entry).
CREATE TABLE IF NOT EXISTS carved (
    file_id         INTEGER PRIMARY KEY REFERENCES files(id),
    area            TEXT NOT NULL CHECK (area IN ('unallocated', 'slack', 'unpartitioned')),
    volume_offset   INTEGER,              -- byte offset of the volume in the image
    image_offset    INTEGER NOT NULL,     -- byte offset of the item in the image
    length          INTEGER NOT NULL,     -- bytes carved (or searched, for a partial one)
    block_size      INTEGER,              -- the volume's block size
    first_block     INTEGER,              -- block range within the volume
    last_block      INTEGER,
    slack_of        TEXT,                 -- display path of the file whose slack held it
    format          TEXT NOT NULL,        -- jpg, png, gif, bmp, webp, heic, mp4, mov, ...
    partial         INTEGER NOT NULL DEFAULT 0,  -- 1: known incomplete (no end, no decode)
    same_as_file_id INTEGER REFERENCES files(id),  -- a listed file with the same SHA-256
    same_location   INTEGER               -- 1: that file's data starts at image_offset
) STRICT;

-- Fragments of known files found by block hashes (schema 7, issue 17): one row per known
-- file found in an area or a file (a files row whose parent is what was searched).
CREATE TABLE IF NOT EXISTS fragments (
    file_id       INTEGER PRIMARY KEY REFERENCES files(id),  -- the hit (an inner item)
    set_name      TEXT NOT NULL,          -- the block-hash set
    known_path    TEXT NOT NULL,          -- the known file, as imported
    known_sha256  TEXT NOT NULL,
    known_size    INTEGER NOT NULL,
    indexed_bytes INTEGER NOT NULL,       -- bytes of the known file its kept blocks cover
    found_bytes   INTEGER NOT NULL,       -- of those, bytes found here
    blocks        INTEGER NOT NULL,       -- matching 4 KiB blocks
    first_offset  INTEGER NOT NULL,       -- where the first one was found
    runs          TEXT NOT NULL           -- JSON [[where found, known-file offset, length]]
) STRICT;

-- Schema 8 (issue 14): the perceptual hashes of other forms of a picture than the one
-- stored (rotations, mirror images, the unletterboxed picture; "draft": the draft-decoded
-- value a full-decode confirmation replaced in `hashes`). Matched like `hashes`.
CREATE TABLE IF NOT EXISTS hash_variants (
    file_id       INTEGER NOT NULL REFERENCES files(id),
    algorithm     TEXT NOT NULL,
    variant       TEXT NOT NULL,          -- rot90, flipx, unletterboxed+rot90, draft, ...
    value         TEXT NOT NULL,          -- canonical lower-case hex
    quality       INTEGER,
    preprocessing TEXT,
    PRIMARY KEY (file_id, algorithm, variant)
) STRICT;

-- Schema 10 (issue 16): metadata of pictures (EXIF) and videos (container tags): facts about
-- a file, escaped like every evidence-derived value, never logged or shown on the terminal.
CREATE TABLE IF NOT EXISTS media_metadata (
    file_id            INTEGER PRIMARY KEY REFERENCES files(id),
    make               TEXT,
    model              TEXT,
    serial             TEXT,              -- body serial number (EXIF BodySerialNumber)
    lens_make          TEXT,
    lens_model         TEXT,
    software           TEXT,
    datetime_original  TEXT,              -- as written: YYYY:MM:DD HH:MM:SS
    offset_original    TEXT,              -- +HH:MM (EXIF OffsetTimeOriginal)
    datetime_digitized TEXT,
    offset_digitized   TEXT,
    gps_latitude       REAL,              -- signed decimal degrees (south negative)
    gps_longitude      REAL,              -- signed decimal degrees (west negative)
    gps_altitude       REAL,              -- signed metres (below sea level negative)
    gps_date           TEXT,              -- YYYY-MM-DD, UTC
    gps_time           TEXT,              -- HH:MM:SS[.fff], UTC
    orientation        INTEGER,
    image_unique_id    TEXT,
    thumbnail          INTEGER NOT NULL,  -- 1: an embedded thumbnail exists (never extracted)
    tags               INTEGER NOT NULL,  -- rows in metadata_tags
    tags_dropped       INTEGER NOT NULL   -- tags over the per-file bound, not kept
) STRICT;

CREATE TABLE IF NOT EXISTS metadata_tags (
    file_id    INTEGER NOT NULL REFERENCES files(id),
    seq        INTEGER NOT NULL,          -- 0, 1, ... in reading order
    source     TEXT NOT NULL,             -- ifd0, exif, gps, interop, ifd1, container, streamN
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,             -- escaped text; bytes as hex
    truncated  INTEGER NOT NULL,          -- 1: value cut at the bound
    free_text  INTEGER NOT NULL,          -- 1: a comment or description (left out of exports)
    PRIMARY KEY (file_id, seq)
) STRICT;

-- Schema 11 (issue 16): series clusters of the case's pictures and video frames and the
-- ranked leads queue, written by a `triage leads` run (docs/leads.md). Rows belong to the
-- run that computed them; a later run adds its own.
CREATE TABLE IF NOT EXISTS clusters (
    run_id          INTEGER NOT NULL REFERENCES runs(id),
    cluster_id      TEXT NOT NULL,        -- stable: from the sorted members' SHA-256
    size            INTEGER NOT NULL,     -- member files
    known_members   INTEGER NOT NULL,     -- members with an exact or confirmed known hit
    review_members  INTEGER NOT NULL,     -- members whose known hits are all for review
    series          TEXT NOT NULL,        -- JSON list of known series hit by members
    hit_sets        TEXT NOT NULL,        -- JSON list of the names of the sets hit
    first_capture   TEXT,                 -- earliest DateTimeOriginal, as written
    last_capture    TEXT,
    cameras         TEXT NOT NULL,        -- JSON [[make, model, serial], ...] of members
    joined_by       TEXT NOT NULL,        -- JSON {"pdq": edges, "phash+dhash": .., "serial": ..}
    score           INTEGER NOT NULL,     -- sum of the signals' points (0: not a lead)
    lead_rank       INTEGER,              -- 1, 2, ... in the leads queue; NULL: not a lead
    reasons         TEXT NOT NULL,        -- JSON [[signal, points, one-line reason], ...]
    PRIMARY KEY (run_id, cluster_id)
) STRICT;

CREATE TABLE IF NOT EXISTS cluster_members (
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    file_id     INTEGER NOT NULL REFERENCES files(id),
    cluster_id  TEXT NOT NULL,
    known       INTEGER NOT NULL,         -- 1: exact or confirmed hit; 2: for review only
    PRIMARY KEY (run_id, file_id)
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
