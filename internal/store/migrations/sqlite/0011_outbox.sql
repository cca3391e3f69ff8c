-- The transactional outbox (stage 7, docs/stage7.md): a job is inserted in
-- the same transaction as the write that causes it, so it exists if and
-- only if the write committed. Workers claim due rows (run_at <= now),
-- pushing run_at one lease ahead: a worker that dies mid-job leaves the row
-- to be claimed again when the lease runs out. A job that succeeds is
-- deleted; one that fails is pushed back by its retry delay; one that
-- failed too often moves to dead_jobs. Times are Unix milliseconds.
-- AUTOINCREMENT: ids are never reused (they name messages on the queue,
-- whose de-duplication must not take a new job for an old one).
CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    trace      TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    run_at     INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX jobs_due_idx ON jobs (run_at, id);

-- Dead letters: jobs that failed every attempt, kept for `conduit jobs`
-- (list, retry, drop). The id is the job's.
CREATE TABLE dead_jobs (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    trace      TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT    NOT NULL,
    died_at    INTEGER NOT NULL
);
