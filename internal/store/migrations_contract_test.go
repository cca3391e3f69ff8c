package store_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/store/migrations"
)

// Migrations stay additive for one release (docs/operations.md, "Deploy a
// release"): during a rolling update, and after a rollback, the previous
// release runs on the new schema. A statement that takes away what it may
// use (a table or column dropped, a table or column renamed, a column's
// type changed) belongs in the release after the one that stopped using
// it, and says so with a `-- contract: <why the previous release no longer
// needs it>` line in the comment directly above the statement.

// shippedBeforeTheRule are the migrations released before this test, with
// the number of such statements each holds. Released migrations are not
// edited (a database that applied one would not apply it again), so the
// counts must stay as they are.
var shippedBeforeTheRule = map[string]int{
	// A table rebuilt under its own name (SQLite cannot change a primary
	// key in place), in the release that changed every use of it.
	"sqlite/0016_tag_count_slots.sql": 2, // DROP TABLE tag_counts; ALTER TABLE … RENAME TO tag_counts
}

func TestMigrationsAreAdditive(t *testing.T) {
	seen := map[string]bool{}
	for _, dialect := range []string{"postgres", "sqlite"} {
		ms, err := migrations.List(dialect)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			key := dialect + "/" + m.Name
			found := contractions(m.SQL)
			if want, ok := shippedBeforeTheRule[key]; ok {
				seen[key] = true
				if len(found) != want {
					t.Errorf("%s was released with %d statements that drop, rename or retype; it now has %d: released migrations are not edited", key, want, len(found))
				}
				continue
			}
			for _, c := range found {
				if !c.marked {
					t.Errorf("%s:%d: %s without a `-- contract: <why>` comment directly above it: the previous release must keep working on the new schema through a rolling update and a rollback (docs/operations.md, \"Deploy a release\")", key, c.line, c.what)
				}
			}
		}
	}
	for key := range shippedBeforeTheRule {
		if !seen[key] {
			t.Errorf("%s is listed as released but no longer exists", key)
		}
	}
}

// The detector itself: what it flags, and what it leaves alone.
func TestContractions(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want string // what was found, "!" after a marked one
	}{
		{"ALTER TABLE users ADD COLUMN bio text NOT NULL DEFAULT '';", ""},
		{"-- A later release drops the column.\nCREATE TABLE t (id int);", ""},
		{"DROP TABLE old_things;", "DROP TABLE"},
		{"DROP TABLE IF EXISTS old_things;", "DROP TABLE"},
		{"-- contract: 1.4 stopped reading it\nDROP TABLE old_things;", "DROP TABLE!"},
		{"-- Why it goes:\n-- contract: 1.4 stopped reading it\nDROP TABLE old_things;", "DROP TABLE!"},
		{"-- contract: 1.4 stopped reading it\n\nDROP TABLE old_things;", "DROP TABLE"},
		{"-- contract:\nDROP TABLE old_things;", "DROP TABLE"},
		{"-- contract: 1.4\nDROP TABLE a;\nDROP TABLE b;", "DROP TABLE!, DROP TABLE"},
		{"-- contract: 1.4\nDROP TABLE a; DROP TABLE b;", "DROP TABLE!, DROP TABLE"},
		{"ALTER TABLE articles DROP COLUMN search;", "DROP COLUMN"},
		{"ALTER TABLE articles\n    DROP search;", "DROP COLUMN"},
		{"alter table articles drop if exists search;", "DROP COLUMN"},
		{"ALTER TABLE t DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (a, b);", ""},
		{"ALTER TABLE t ALTER COLUMN c DROP DEFAULT, ALTER c DROP NOT NULL;", ""},
		{"ALTER TABLE t RENAME TO u;", "RENAME"},
		{"ALTER TABLE t RENAME COLUMN a TO b;", "RENAME"},
		{"ALTER TABLE t ALTER COLUMN n TYPE bigint;", "TYPE change"},
		{"ALTER TABLE t ALTER n SET DATA TYPE bigint;", "TYPE change"},
		{"ALTER TABLE t ALTER COLUMN n SET DEFAULT 0;", ""},
		{"INSERT INTO notes (body) VALUES ('-- not a comment; DROP TABLE notes');", ""},
		// A function body's semicolons do not end the statement.
		{"-- contract: 1.4 stopped writing it\nDO $$\nBEGIN\n    PERFORM 1;\n    DROP TABLE old_things;\nEND\n$$;", "DROP TABLE!"},
	} {
		var got []string
		for _, f := range contractions(c.sql) {
			s := f.what
			if f.marked {
				s += "!"
			}
			got = append(got, s)
		}
		if g := strings.Join(got, ", "); g != c.want {
			t.Errorf("%q: found %q, want %q", c.sql, g, c.want)
		}
	}
}

// contraction is a statement that takes something away from the schema.
type contraction struct {
	line   int    // where the statement starts, from 1
	what   string // DROP TABLE, DROP COLUMN, RENAME, TYPE change
	marked bool   // a `-- contract: <why>` line in the comment directly above
}

var (
	dropTable  = regexp.MustCompile(`\bDROP\s+TABLE\b`)
	alterTable = regexp.MustCompile(`\bALTER\s+TABLE\b`)
	// DROP [COLUMN] name: COLUMN is optional in PostgreSQL.
	dropWhat   = regexp.MustCompile(`\bDROP\s+(\w+)`)
	rename     = regexp.MustCompile(`\bRENAME\b`)
	typeChange = regexp.MustCompile(`\bALTER\s+(?:COLUMN\s+)?(?:"[^"]+"|\w+)\s+(?:SET\s+DATA\s+)?TYPE\b`)
	marker     = regexp.MustCompile(`^--\s*contract:\s*\S`)
	dollarTag  = regexp.MustCompile(`^\$\w*\$`)
)

// notAColumn are the words after DROP in ALTER TABLE that drop no column.
var notAColumn = map[string]bool{"CONSTRAINT": true, "DEFAULT": true, "NOT": true, "EXPRESSION": true, "IDENTITY": true}

// contractions finds the statements of sql that drop a table or column,
// rename, or change a column's type. Statements end at semicolons outside
// quotes and dollar-quoted bodies; comments are left out.
func contractions(sql string) []contraction {
	var out []contraction
	var stmt strings.Builder
	start := 0 // line of the statement's first code, 0 between statements
	marked := false
	var comment []string // the comment lines directly above the next code
	inString := false
	dollar := "" // the tag of the dollar-quoted body we are in
	for i, line := range strings.Split(sql, "\n") {
		if trimmed := strings.TrimSpace(line); start == 0 {
			switch {
			case trimmed == "":
				comment = nil
				continue
			case strings.HasPrefix(trimmed, "--"):
				comment = append(comment, trimmed)
				continue
			}
		}
		above := comment
		comment = nil
		for j := 0; j < len(line); j++ {
			ch := line[j]
			if start == 0 {
				if ch == ' ' || ch == '\t' || ch == '\r' {
					continue
				}
				if strings.HasPrefix(line[j:], "--") {
					break
				}
				// A second statement on the line has no comment above it.
				start, marked = i+1, false
				for _, c := range above {
					marked = marked || marker.MatchString(c)
				}
				above = nil
			}
			switch {
			case inString:
				inString = ch != '\''
				continue // a literal's text is no statement
			case dollar != "":
				if strings.HasPrefix(line[j:], dollar) {
					j += len(dollar) - 1
					dollar = ""
					continue
				}
			case ch == '\'':
				inString = true
				continue
			case ch == '$' && dollarTag.MatchString(line[j:]):
				dollar = dollarTag.FindString(line[j:])
				j += len(dollar) - 1
				continue
			case strings.HasPrefix(line[j:], "--"):
				j = len(line) // the rest of the line is a comment
				continue
			case ch == ';':
				out = append(out, judge(stmt.String(), start, marked)...)
				stmt.Reset()
				start = 0
				continue
			}
			stmt.WriteByte(ch)
		}
		stmt.WriteByte('\n')
	}
	if start != 0 {
		out = append(out, judge(stmt.String(), start, marked)...)
	}
	return out
}

// judge returns what statement s (starting at line) takes away.
func judge(s string, line int, marked bool) []contraction {
	s = strings.ToUpper(s)
	var what []string
	if dropTable.MatchString(s) {
		what = append(what, "DROP TABLE")
	}
	if loc := alterTable.FindStringIndex(s); loc != nil {
		rest := s[loc[1]:]
		for _, m := range dropWhat.FindAllStringSubmatch(rest, -1) {
			if m[1] != "TABLE" && !notAColumn[m[1]] {
				what = append(what, "DROP COLUMN")
				break
			}
		}
		if rename.MatchString(rest) {
			what = append(what, "RENAME")
		}
		if typeChange.MatchString(rest) {
			what = append(what, "TYPE change")
		}
	}
	out := make([]contraction, len(what))
	for i, w := range what {
		out[i] = contraction{line: line, what: w, marked: marked}
	}
	return out
}
