-- One definition of "the same username" (docs/security.md, "Usernames and
-- emails"): users.username_key, under a unique index, is
-- conduit.UsernameKey(username). Go computes it for every write; this
-- migration computes it once for the rows already here, the same way:
--
--  * a name of today's form (1 to 40 ASCII letters, digits, '_', '-' and
--    '.', with a letter or a digit) is keyed by its ASCII lower case
--    (SQLite's built-in lower() folds ASCII only);
--  * any other name stage 1 accepted (non-ASCII letters and digits) is
--    its own key: reachable by its exact spelling, never confused with a
--    name that merely folds to it (the old index compared lower(username),
--    which let 'admİn' and 'admin', or 'Élise' and 'élise', both exist).
--
-- Names that could not be kept are renamed deterministically by appending
-- '~' and the user id ('~' was never allowed in a name, so the result is
-- free; it is not of today's form, so it is its own key):
--  * '.' and '..', which no URL can reach (routers remove such segments);
--  * a name whose key another user, with a smaller id, already has (this
--    cannot happen to data written under the old index, but a database
--    built under another collation could hold such rows).

ALTER TABLE users ADD COLUMN username_key TEXT NOT NULL DEFAULT '';

UPDATE users SET username_key = CASE
    WHEN length(username) BETWEEN 1 AND 40
     AND username NOT GLOB '*[^A-Za-z0-9_.-]*'
     AND username GLOB '*[A-Za-z0-9]*'
    THEN lower(username)
    ELSE username
END;

UPDATE users
SET username = username || '~' || id, username_key = username || '~' || id
WHERE username IN ('.', '..')
   OR EXISTS (SELECT 1 FROM users o WHERE o.username_key = users.username_key AND o.id < users.id);

DROP INDEX users_username_key;
CREATE UNIQUE INDEX users_username_key ON users (username_key);
