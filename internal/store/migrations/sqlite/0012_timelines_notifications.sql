-- Stage 7 (docs/stage7.md): home timelines fanned out on write, and
-- notifications, both filled by workers from the outbox's jobs.
--
-- follows.feed_counted: how many of the followee's articles the follower's
-- feed count (timeline_state.feed_count) holds for this follow. Jobs set it
-- to the followee's articles_count (0 for a celebrity), adding the
-- difference to feed_count in the same transaction; an unfollow subtracts
-- it. So feed counts are exact without counting, whatever order jobs run in.
ALTER TABLE follows ADD COLUMN feed_counted INTEGER NOT NULL DEFAULT 0;

-- One row per author that jobs have worked for: its row is the lock that
-- puts the jobs of one author in a row (PostgreSQL), and celebrity = 1
-- once it had more followers than --fanout-max-followers: its articles are
-- then merged into feeds on read instead of fanned out (sticky).
CREATE TABLE fanout_authors (
    user_id   INTEGER PRIMARY KEY,
    celebrity INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX fanout_celebrities_idx ON fanout_authors (user_id) WHERE celebrity = 1;

-- A user's home timeline: the ids of the newest articles of the accounts
-- they follow (celebrities excepted). It holds every such article with an
-- id above timeline_state.horizon; older ones were trimmed (a cap per
-- user) and are read the way feeds were read before.
CREATE TABLE timelines (
    user_id    INTEGER NOT NULL,
    article_id INTEGER NOT NULL,
    author_id  INTEGER NOT NULL,
    PRIMARY KEY (user_id, article_id)
) WITHOUT ROWID;
CREATE INDEX timelines_article_idx ON timelines (article_id);

-- Per user: whether the timeline is built (ready = 1; feeds of others are
-- read from the follows, as before), its horizon, the exact count of the
-- non-celebrity part of the feed, and about how many rows it has (size,
-- for trimming). Users created from now on get a ready, empty row; users
-- that existed before are built by timeline.build jobs.
CREATE TABLE timeline_state (
    user_id    INTEGER PRIMARY KEY,
    ready      INTEGER NOT NULL DEFAULT 0,
    horizon    INTEGER NOT NULL DEFAULT 0,
    feed_count INTEGER NOT NULL DEFAULT 0,
    size       INTEGER NOT NULL DEFAULT 0
);

-- Follows and unfollows whose job has not synced the follower's timeline
-- yet: while a user has one, their feed is read from the follows, so that
-- whoever follows someone sees their articles at once. The job deletes the
-- row unless a newer change bumped its version.
CREATE TABLE timeline_pending (
    user_id     INTEGER NOT NULL,
    followee_id INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    PRIMARY KEY (user_id, followee_id)
);

-- Notifications: events of one kind about one article (follows: all
-- follows) are coalesced into one unread row, whose actor is the latest
-- and actors the number of distinct ones. seq orders a user's list by
-- latest activity. Times are Unix milliseconds.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    group_key  TEXT    NOT NULL,
    article_id INTEGER REFERENCES articles (id) ON DELETE CASCADE,
    actor_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actors     INTEGER NOT NULL DEFAULT 0,
    seq        INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE UNIQUE INDEX notifications_unread_key ON notifications (user_id, group_key) WHERE read_at IS NULL;
CREATE INDEX notifications_list_idx ON notifications (user_id, seq DESC, id DESC);
CREATE INDEX notifications_article_idx ON notifications (article_id);

-- Every event a user was told of, under its job's key: a repeated job
-- finds its key here and does nothing.
CREATE TABLE notification_events (
    user_id         INTEGER NOT NULL,
    key             TEXT    NOT NULL,
    notification_id INTEGER REFERENCES notifications (id) ON DELETE CASCADE,
    actor_id        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX notification_events_group_idx ON notification_events (notification_id, actor_id);
