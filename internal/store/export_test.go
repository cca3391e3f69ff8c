package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

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
