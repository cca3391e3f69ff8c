package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store/migrations"
)

// This file gives the external tests of this package (store_test) a way
// to build databases as older versions left them.

// MigrateTo applies the migrations up to version and no further.
func (db *DB) MigrateTo(ctx context.Context, version int) error {
	ms, err := migrations.List(db.d.name)
	if err != nil {
		return err
	}
	if _, err := migrations.Current(ctx, db.write); err != nil {
		return err
	}
	for _, m := range ms {
		if m.Version > version {
			break
		}
		if _, err := db.write.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		ins := db.d.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, CURRENT_TIMESTAMP)`)
		if _, err := db.write.ExecContext(ctx, ins, m.Version); err != nil {
			return err
		}
	}
	return nil
}

// Exec runs a statement written with '?' placeholders.
func (db *DB) Exec(ctx context.Context, q string, args ...any) error {
	_, err := db.write.ExecContext(ctx, db.d.rebind(q), args...)
	return err
}

// UsernameKeys returns the name and key of every user by id.
func (db *DB) UsernameKeys(ctx context.Context) (map[int64][2]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, username, username_key FROM users`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64][2]string{}
	for rows.Next() {
		var id int64
		var name, key string
		if err := rows.Scan(&id, &name, &key); err != nil {
			return nil, err
		}
		out[id] = [2]string{name, key}
	}
	return out, rows.Err()
}

// DropTimelines forgets every timeline, as a database migrated from before
// timelines has none.
func (db *DB) DropTimelines(ctx context.Context) error {
	for _, t := range []string{"timelines", "timeline_state", "timeline_pending"} {
		if _, err := db.write.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return err
		}
	}
	return nil
}

// TimelineShape counts the celebrities and the timelines trimmed to a
// horizon, so that tests can tell they exercised both.
func (db *DB) TimelineShape(ctx context.Context) (celebrities, trimmed int, err error) {
	if err = db.write.QueryRowContext(ctx, `SELECT count(*) FROM fanout_authors WHERE celebrity = 1`).Scan(&celebrities); err != nil {
		return
	}
	err = db.write.QueryRowContext(ctx, `SELECT count(*) FROM timeline_state WHERE horizon > 0`).Scan(&trimmed)
	return
}

// CommentPageQuery exports the query of a page of comments to the tests,
// with its arguments.
func (db *DB) CommentPageQuery(articleID, before int64, limit int) (string, []any) {
	args := []any{int64(0), articleID}
	if before > 0 {
		args = append(args, db.commentBound(articleID, before)...)
	}
	return db.commentPage(before > 0), append(args, limit+1)
}

// Plan is how the database runs q with args: on SQLite the lines of
// EXPLAIN QUERY PLAN; on PostgreSQL the plan nodes of EXPLAIN ANALYZE,
// with the rows each actually produced.
func (db *DB) Plan(ctx context.Context, q string, args ...any) ([]PlanNode, error) {
	if db.d.name == "sqlite" {
		rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []PlanNode
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				return nil, err
			}
			out = append(out, PlanNode{Detail: detail})
		}
		return out, rows.Err()
	}
	var raw string
	if err := db.read.QueryRowContext(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+dollarRebind(q), args...).Scan(&raw); err != nil {
		return nil, err
	}
	var plans []struct{ Plan pgPlan }
	if err := json.Unmarshal([]byte(raw), &plans); err != nil {
		return nil, err
	}
	var out []PlanNode
	var walk func(p pgPlan)
	walk = func(p pgPlan) {
		out = append(out, PlanNode{
			Detail: strings.TrimSpace(fmt.Sprintf("%s %s %s", p.NodeType, p.Relation, p.Index)),
			Rows:   p.Rows * p.Loops, Removed: p.Removed,
		})
		for _, c := range p.Plans {
			walk(c)
		}
	}
	walk(plans[0].Plan)
	return out, nil
}

// PlanNode is a step of a plan. Rows (PostgreSQL only) is how many rows it
// produced over all its loops, Removed how many it read and filtered out.
type PlanNode struct {
	Detail        string
	Rows, Removed int
}

type pgPlan struct {
	NodeType string   `json:"Node Type"`
	Relation string   `json:"Relation Name"`
	Index    string   `json:"Index Name"`
	Rows     int      `json:"Actual Rows"`
	Loops    int      `json:"Actual Loops"`
	Removed  int      `json:"Rows Removed by Filter"`
	Plans    []pgPlan `json:"Plans"`
}

// GlobalListQuery exports the query of a page of the global article list
// to the tests, with its arguments.
func (db *DB) GlobalListQuery(viewerID int64, f conduit.ArticleFilter) (string, []any) {
	return pageQuery(viewerID, everyArticle.ids, everyArticle.boundCol, nil, nil, f)
}

// UsersByPrefixQuery exports UsersByPrefix's query to the tests, with its
// arguments.
func (db *DB) UsersByPrefixQuery(viewerID int64, prefix string, limit int) (string, []any) {
	return db.usersByPrefix(viewerID, prefix, limit)
}

// PendingFollows counts the user's follows and unfollows whose feed.follow
// job has not run yet.
func (db *DB) PendingFollows(ctx context.Context, userID int64) (n int, err error) {
	err = db.write.QueryRowContext(ctx, db.d.rebind(`SELECT count(*) FROM timeline_pending WHERE user_id = ?`), userID).Scan(&n)
	return
}

// SearchSegments counts the segments of SQLite's full-text index.
func (db *DB) SearchSegments(ctx context.Context) (n int, err error) {
	err = db.write.QueryRowContext(ctx, `SELECT count(DISTINCT segid) FROM articles_fts_idx`).Scan(&n)
	return
}
