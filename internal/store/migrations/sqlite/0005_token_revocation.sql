-- Sign-in tokens can be revoked, and sign-in and sign-up attempts are
-- throttled across nodes (docs/security.md).
--
-- users.token_gen: tokens carry the generation they were issued at, and
-- only tokens of the current generation are accepted. Changing the
-- password or signing out everywhere adds one, revoking every earlier
-- token at once. Tokens from before this column count as generation 0.
ALTER TABLE users ADD COLUMN token_gen INTEGER NOT NULL DEFAULT 0;

-- Single tokens revoked before they expire (signing out of one browser),
-- kept until they would have expired anyway. Times are Unix milliseconds.
CREATE TABLE revoked_tokens (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_id   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, token_id)
) WITHOUT ROWID;
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

-- Attempt counters in fixed windows: attempt_key is a hash naming the rule
-- and what it counts (a client address or an account); the window ends at
-- reset_at (Unix milliseconds), after which the row counts nothing and is
-- purged.
CREATE TABLE auth_attempts (
    attempt_key TEXT    NOT NULL PRIMARY KEY,
    count       INTEGER NOT NULL,
    reset_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX auth_attempts_reset_idx ON auth_attempts (reset_at);
