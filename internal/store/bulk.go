package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rows for bulk loading (conduit seed). IDs are chosen by the caller so that
// rows can refer to each other without reading anything back; updated_at is
// written equal to created_at.
type (
	UserRow struct {
		ID                                        int64
		Username, Email, PasswordHash, Bio, Image string
		CreatedAt                                 time.Time
	}
	FollowRow struct {
		FollowerID, FolloweeID int64
		CreatedAt              time.Time
	}
	ArticleRow struct {
		ID                       int64
		Slug                     string
		AuthorID                 int64
		Title, Description, Body string
		FavoritesCount           int
		CreatedAt                time.Time
	}
	ArticleTagRow struct {
		ArticleID int64
		Tag       string
	}
	FavoriteRow struct {
		UserID, ArticleID int64
		CreatedAt         time.Time
	}
	CommentRow struct {
		ID, ArticleID, AuthorID int64
		Body                    string
		CreatedAt               time.Time
	}
)

// BulkLoader writes batches of rows fast, with the safety nets of normal
// operation (secondary indexes, foreign key checks, synchronous commits)
// lowered for the duration of the load. Finish puts them back; Close
// without Finish puts back what it can and leaves a database that should be
// thrown away.
type BulkLoader interface {
	Users(ctx context.Context, rows []UserRow) error
	Follows(ctx context.Context, rows []FollowRow) error
	Articles(ctx context.Context, rows []ArticleRow) error
	ArticleTags(ctx context.Context, rows []ArticleTagRow) error
	Favorites(ctx context.Context, rows []FavoriteRow) error
	Comments(ctx context.Context, rows []CommentRow) error
	// Finish rebuilds indexes and constraints, refreshes planner
	// statistics and restores the normal settings. step is told what it is
	// doing, for progress output; it may be nil.
	Finish(ctx context.Context, step func(string)) error
	Close() error
}

// seedTables are the tables a bulk load fills, parents first.
var seedTables = []string{"users", "follows", "articles", "article_tags", "favorites", "comments"}

// ErrNotEmpty is returned by a bulk load into a database that has data.
var ErrNotEmpty = errors.New("database is not empty")

// TableCounts returns the number of rows of each table the seeder fills.
func (db *DB) TableCounts(ctx context.Context) (map[string]int64, error) {
	out := make(map[string]int64, len(seedTables))
	for _, t := range seedTables {
		var n int64
		if err := db.queryRow(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}

// IsEmpty reports whether no table the seeder fills has a row.
func (db *DB) IsEmpty(ctx context.Context) (bool, error) {
	for _, t := range seedTables {
		var any bool
		if err := db.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t+`)`).Scan(&any); err != nil {
			return false, err
		}
		if any {
			return false, nil
		}
	}
	return true, nil
}

// integrityChecks are queries that return a count of broken rows.
var integrityChecks = []struct{ name, q string }{
	{"articles.favorites_count differs from favorites rows", `
		SELECT count(*) FROM articles a
		WHERE a.favorites_count <> (SELECT count(*) FROM favorites f WHERE f.article_id = a.id)`},
	{"follows without user", `
		SELECT count(*) FROM follows f
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = f.follower_id)
		   OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = f.followee_id)`},
	{"self follows", `SELECT count(*) FROM follows WHERE follower_id = followee_id`},
	{"articles without author", `
		SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.author_id)`},
	{"article_tags without article", `
		SELECT count(*) FROM article_tags t WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = t.article_id)`},
	{"favorites without user or article", `
		SELECT count(*) FROM favorites f
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = f.user_id)
		   OR NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = f.article_id)`},
	{"tag counts (the sums of their slots) differ from article_tags", `
		SELECT count(*) FROM (SELECT tag, sum(articles) AS n FROM tag_counts GROUP BY tag) c
		WHERE c.n <> (SELECT count(*) FROM article_tags t WHERE t.tag = c.tag)`},
	{"tags missing from tag_counts", `
		SELECT count(DISTINCT tag) FROM article_tags t
		WHERE NOT EXISTS (SELECT 1 FROM tag_counts c WHERE c.tag = t.tag)`},
	{"article count slots differ from articles rows", `
		SELECT CASE WHEN coalesce((SELECT sum(value) FROM article_count_slots), 0) <> (SELECT count(*) FROM articles)
		THEN 1 ELSE 0 END`},
	{"users.articles_count differs from articles rows", `
		SELECT count(*) FROM users u
		WHERE u.articles_count <> (SELECT count(*) FROM articles a WHERE a.author_id = u.id)`},
	{"articles whose slug is not in article_slugs", `
		SELECT count(*) FROM articles a
		WHERE NOT EXISTS (SELECT 1 FROM article_slugs s WHERE s.slug = a.slug AND s.article_id = a.id)`},
	{"comment_counts differ from comments rows", `
		SELECT count(*) FROM comment_counts n
		WHERE n.comments <> (SELECT count(*) FROM comments c WHERE c.article_id = n.article_id)`},
	{"articles with comments missing from comment_counts", `
		SELECT count(DISTINCT article_id) FROM comments c
		WHERE NOT EXISTS (SELECT 1 FROM comment_counts n WHERE n.article_id = c.article_id)`},
	{"comments without author or article", `
		SELECT count(*) FROM comments c
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.author_id)
		   OR NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = c.article_id)`},
}

// CheckIntegrity verifies what the schema alone does not guarantee after a
// bulk load: counters equal to the rows they count, and no row pointing at
// a missing parent. It reads every table, so it is for tests and
// `conduit seed --verify`, not for a serving database.
func (db *DB) CheckIntegrity(ctx context.Context) error {
	var errs []string
	for _, c := range integrityChecks {
		var n int64
		if err := db.queryRow(ctx, c.q).Scan(&n); err != nil {
			return fmt.Errorf("check %s: %w", c.name, err)
		}
		if n > 0 {
			errs = append(errs, fmt.Sprintf("%d %s", n, c.name))
		}
	}
	if len(errs) > 0 {
		return errors.New("integrity: " + strings.Join(errs, "; "))
	}
	return nil
}

// BulkLoad prepares db for a bulk load. The database must be empty.
func (db *DB) BulkLoad(ctx context.Context) (BulkLoader, error) {
	empty, err := db.IsEmpty(ctx)
	if err != nil {
		return nil, err
	}
	if !empty {
		return nil, ErrNotEmpty
	}
	switch db.d.name {
	case "sqlite":
		return db.bulkLoadSQLite(ctx)
	case "postgres":
		return db.bulkLoadPostgres(ctx)
	}
	return nil, fmt.Errorf("bulk load into %s is not supported", db.d.name)
}

// refreshCounters recomputes the counters (migrations 0002, 0004, 0010,
// 0015, 0016) from the rows, after a bulk load; the slotted ones into slot 0.
var refreshCounters = []string{
	`DELETE FROM tag_counts`,
	`INSERT INTO tag_counts (tag, slot, articles) SELECT tag, 0, count(*) FROM article_tags GROUP BY tag`,
	`DELETE FROM article_count_slots`,
	`INSERT INTO article_count_slots (slot, value) SELECT 0, count(*) FROM articles`,
	`UPDATE users SET articles_count = 0 WHERE articles_count <> 0`,
	`UPDATE users SET articles_count = c.n
	 FROM (SELECT author_id, count(*) AS n FROM articles GROUP BY author_id) AS c
	 WHERE users.id = c.author_id`,
	// Every article's current slug is in its slug history (0008); older
	// slugs, if any were copied, are kept.
	`INSERT INTO article_slugs (slug, article_id)
	 SELECT a.slug, a.id FROM articles a
	 WHERE NOT EXISTS (SELECT 1 FROM article_slugs s WHERE s.slug = a.slug)`,
	`DELETE FROM comment_counts`,
	`INSERT INTO comment_counts (article_id, comments) SELECT article_id, count(*) FROM comments GROUP BY article_id`,
}

// resetTables are the seeder's tables and the rows that hang off users,
// parents first.
var resetTables = append(slices.Clone(seedTables), "revoked_tokens",
	"notifications", "notification_events", "timelines", "timeline_state", "timeline_pending", "fanout_authors", "jobs", "dead_jobs")

// ResetData deletes every row of the tables the seeder fills, and what
// refers to them.
func (db *DB) ResetData(ctx context.Context) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		if db.d.name == "postgres" {
			if _, err := tx.exec(ctx, `TRUNCATE `+strings.Join(resetTables, ", ")+` RESTART IDENTITY CASCADE`); err != nil {
				return err
			}
		} else {
			for i := len(resetTables) - 1; i >= 0; i-- {
				if _, err := tx.exec(ctx, `DELETE FROM `+resetTables[i]); err != nil {
					return err
				}
			}
		}
		for _, q := range refreshCounters {
			if _, err := tx.exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}
