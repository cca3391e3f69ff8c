-- Idempotency keys (stage 3): the first response to a write sent with an
-- Idempotency-Key header, so a repeat (a client or load balancer retry,
-- possibly on another node) is answered from here instead of applied
-- again. Same table as the SQLite version; times are Unix milliseconds.
CREATE TABLE idempotency_keys (
    user_id      bigint  NOT NULL,          -- 0 for anonymous requests
    idem_key     text    NOT NULL,
    method       text    NOT NULL,
    path         text    NOT NULL,
    fingerprint  text    NOT NULL,          -- SHA-256 of the body
    token        text    NOT NULL,          -- the attempt that owns the key
    locked_until bigint  NOT NULL,          -- an unfinished attempt is abandoned after this
    applied      integer NOT NULL DEFAULT 0, -- 1 once a write of the attempt committed
    status       integer,                   -- NULL until the response is stored
    content_type text    NOT NULL DEFAULT '',
    body         bytea,
    expires_at   bigint  NOT NULL,
    PRIMARY KEY (user_id, idem_key, method, path)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
