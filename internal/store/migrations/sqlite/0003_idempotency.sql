-- Idempotency keys (stage 3): the first response to a write sent with an
-- Idempotency-Key header, so a repeat (a client or load balancer retry,
-- possibly on another node) is answered from here instead of applied
-- again. Times are Unix milliseconds.
CREATE TABLE idempotency_keys (
    user_id      INTEGER NOT NULL,          -- 0 for anonymous requests
    idem_key     TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,          -- SHA-256 of the body
    token        TEXT    NOT NULL,          -- the attempt that owns the key
    locked_until INTEGER NOT NULL,          -- an unfinished attempt is abandoned after this
    applied      INTEGER NOT NULL DEFAULT 0, -- 1 once a write of the attempt committed
    status       INTEGER,                   -- NULL until the response is stored
    content_type TEXT    NOT NULL DEFAULT '',
    body         BLOB,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, idem_key, method, path)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
