-- One definition of "the same username": see the SQLite version of this
-- migration for the rules. Here the ASCII folding is translate(), because
-- PostgreSQL's lower() follows the database's locale (in a Turkish one,
-- lower('I') is 'ı'), and the character classes are matched in the "C"
-- collation, so ranges are code point ranges.

ALTER TABLE users ADD COLUMN username_key text NOT NULL DEFAULT '';

UPDATE users SET username_key = CASE
    WHEN username COLLATE "C" ~ '^[A-Za-z0-9_.-]{1,40}$'
     AND username COLLATE "C" ~ '[A-Za-z0-9]'
    THEN translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
    ELSE username
END;

UPDATE users
SET username = username || '~' || id, username_key = username || '~' || id
WHERE username IN ('.', '..')
   OR EXISTS (SELECT 1 FROM users o WHERE o.username_key = users.username_key AND o.id < users.id);

ALTER TABLE users ALTER COLUMN username_key DROP DEFAULT;
DROP INDEX users_username_key;
CREATE UNIQUE INDEX users_username_key ON users (username_key);
