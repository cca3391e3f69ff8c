package storetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reusing copies of the template. On a shared server, making and dropping
// a database is the slow part of a PostgreSQL test: CREATE DATABASE writes
// the whole copy, and DROP DATABASE waits for a checkpoint, which flushes
// and syncs every other user's writes too (on a busy machine 0.5–3 s per
// drop, most of a package's run). So under Main a database a test is done
// with is emptied and handed to the next test instead, when that gives the
// next test exactly what a fresh copy would:
//
//   - its sessions are ended and it is renamed, so that a client the test
//     left behind cannot reach it (a renamed database refuses the old name);
//   - every table is truncated (RESTART IDENTITY: sequences start again)
//     and the rows the migrations wrote are put back;
//   - then its fingerprint — schema, storage statistics, planner
//     statistics, vacuum and analyze counts, sequences, database settings —
//     must equal the template's. A test that changed the schema, analyzed
//     or vacuumed (or autovacuum did), or altered the database leaves a
//     database that is dropped as before.

// debugEnv, when set, has the run say on stderr why a copy was not reused
// and how many were.
const debugEnv = "CONDUIT_STORETEST_DEBUG"

// fingerprintSQL is one text summing up everything of a database that a
// test could see besides its rows. The rows of the tables are left out:
// the reset replaces them.
const fingerprintSQL = `
WITH ns AS (
	SELECT oid, nspname FROM pg_namespace
	WHERE nspname NOT IN ('pg_catalog', 'information_schema')
	  AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
), rel AS (
	SELECT c.oid, ns.nspname, c.relname, c.relkind, c.relpages, c.reltuples, c.relallvisible
	FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
)
SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
	-- The storage statistics of tables (the planner's row estimates). Those
	-- of an index are left out: TRUNCATE resets them to "never counted"
	-- where CREATE INDEX counted an empty index, and the planner reads an
	-- index's size from its file either way.
	SELECT format('rel %s.%s %s', nspname, relname, relkind) || CASE WHEN relkind IN ('i', 'I') THEN ''
		ELSE format(' pages=%s tuples=%s visible=%s', relpages, reltuples, relallvisible) END FROM rel
	UNION ALL
	SELECT format('col %s.%s %s %s %s notnull=%s default=%s', r.nspname, r.relname, a.attnum, a.attname,
		format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
	FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rel r ON r.oid = i.indrelid
	UNION ALL
	SELECT format('constraint %s %s %s', co.conrelid::regclass, co.conname, pg_get_constraintdef(co.oid))
	FROM pg_constraint co JOIN ns ON ns.oid = co.connamespace
	UNION ALL
	SELECT 'trigger ' || pg_get_triggerdef(tg.oid) FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal
	UNION ALL
	SELECT 'function ' || pg_get_functiondef(p.oid) FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace WHERE p.prokind IN ('f', 'p')
	UNION ALL
	SELECT format('view %s %s', r.relname, pg_get_viewdef(r.oid)) FROM rel r WHERE r.relkind IN ('v', 'm')
	UNION ALL
	SELECT format('type %s.%s %s', ns.nspname, t.typname, t.typtype) FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
	UNION ALL
	SELECT format('enum %s %s %s', e.enumtypid::regtype, e.enumsortorder, e.enumlabel) FROM pg_enum e
	UNION ALL
	SELECT format('rule %s %s', rulename, definition) FROM pg_rules WHERE schemaname IN (SELECT nspname FROM ns)
	UNION ALL
	SELECT format('policy %s %s %s', tablename, policyname, qual) FROM pg_policies
	UNION ALL
	SELECT format('stats %s.%s.%s', schemaname, tablename, attname) FROM pg_stats WHERE schemaname IN (SELECT nspname FROM ns)
	UNION ALL
	SELECT format('vacuum %s.%s %s %s %s %s', schemaname, relname, vacuum_count, autovacuum_count, analyze_count, autoanalyze_count)
	FROM pg_stat_user_tables
	UNION ALL
	SELECT format('sequence %s.%s %s', schemaname, sequencename, last_value) FROM pg_sequences
	UNION ALL
	SELECT format('extension %s %s', extname, extversion) FROM pg_extension
	UNION ALL
	SELECT format('database %s %s %s', d.datallowconn, d.datconnlimit, s.setconfig)
	FROM pg_database d LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid
	WHERE d.datname = current_database()
) f(x)`

// reuse is what the template holds that its copies are reset to.
type reuse struct {
	fingerprint string
	reset       string // the statements that empty a copy and put back the migrations' rows
}

// readReuse reads the template's fingerprint and builds the reset from its
// tables, while the template is still open (c is a session on it).
func readReuse(ctx context.Context, c *pgx.Conn) (*reuse, error) {
	rows, err := c.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("the template has no tables")
	}
	reset := []string{`TRUNCATE ` + strings.Join(tables, ", ") + ` RESTART IDENTITY`}
	for _, t := range tables {
		// The rows as JSON, put back by json_populate_recordset: no
		// column list to keep in step with the migrations.
		var rows *string
		if err := c.QueryRow(ctx, `SELECT json_agg(t)::text FROM `+t+` t`).Scan(&rows); err != nil {
			return nil, err
		}
		if rows != nil {
			reset = append(reset, `INSERT INTO `+t+` SELECT * FROM json_populate_recordset(NULL::`+t+`, `+quote(*rows)+`)`)
		}
	}
	var fp string
	if err := c.QueryRow(ctx, fingerprintSQL).Scan(&fp); err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	}
	return &reuse{fingerprint: fp, reset: strings.Join(reset, ";\n")}, nil
}

func quote(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// recycle empties database name after its test and offers it to the next
// test under a new name, or drops it when it cannot be made equal to a
// fresh copy. It runs in the background under Main.
func (r *pgRun) recycle(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fresh, err := r.reset(ctx, name)
	if err != nil {
		if os.Getenv(debugEnv) != "" {
			fmt.Fprintf(os.Stderr, "storetest: not reusing %s: %v\n", name, err)
		}
		r.dropLater(name)
		if fresh != "" && fresh != name {
			r.dropLater(fresh)
		}
		return
	}
	r.reused.Add(1)
	select {
	case r.free <- fresh:
	default:
		r.dropLater(fresh)
	}
}

// reset does recycle's work; it returns the database's name as it left it.
func (r *pgRun) reset(ctx context.Context, name string) (string, error) {
	if _, err := r.pool.Exec(ctx, `SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
		return name, err
	}
	fresh := r.name + "_" + fmt.Sprint(r.seq.Add(1))
	if _, err := r.pool.Exec(ctx, `ALTER DATABASE `+name+` RENAME TO `+fresh); err != nil {
		return name, err
	}
	c, err := pgx.Connect(ctx, r.url(fresh))
	if err != nil {
		return fresh, err
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		return fresh, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, r.reuse.reset); err != nil {
		return fresh, err
	}
	var fp string
	if err := tx.QueryRow(ctx, fingerprintSQL).Scan(&fp); err != nil {
		return fresh, err
	}
	if fp != r.reuse.fingerprint {
		return fresh, fmt.Errorf("differs from the template after the reset")
	}
	return fresh, tx.Commit(ctx)
}
