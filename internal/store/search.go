package store

import (
	"context"
	"database/sql"
	"strings"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// SearchArticles implements conduit.Store: the articles having every term,
// found in the full-text index (migration 0009; on PostgreSQL 0019). Only
// the newest conduit.SearchWindow matches are ranked, which bounds the
// work of a search for a common word; they are ordered by the words found
// in the title (10 each) and in the description (4 each), newest first
// among equals. The body only matches.
func (db *DB) SearchArticles(ctx context.Context, viewerID int64, q conduit.SearchQuery) (conduit.ArticlePage, error) {
	var window, ids string
	var args []any
	if db.d.name == "postgres" {
		// plainto_tsquery reads the words as words: no operator in them
		// can change the query.
		window = `SELECT article_id AS id FROM article_search
			WHERE words @@ plainto_tsquery('english', ?) ORDER BY article_id DESC LIMIT ?`
		ids, args = postgresRankByFields(q)
	} else {
		match := ftsAll(q.Terms, -1)
		window = `SELECT rowid AS id FROM articles_fts WHERE articles_fts MATCH ? ORDER BY rowid DESC LIMIT ?`
		if len(q.Terms) <= maxTermsByColumn {
			ids, args = sqliteRankByColumns(q)
		} else {
			// Ranked by the words found in the title (10 each) and in the
			// description (4 each), counted as the markers highlight() puts
			// around each match (stemmed as the index is), newest first
			// among equals. highlight() reads each row's text and tokenizes
			// it again: ~5 µs a row, 1,000 rows. bm25() cost more: it
			// weighed each word by how many articles hold it, found by
			// walking every match of the word however small the window
			// (407,385 rows for one common word on the full dataset). The
			// count as in sqliteRankByColumns.
			ids = `WITH w(id, t, d) AS MATERIALIZED (
				SELECT rowid, highlight(articles_fts, 0, char(1), ''), highlight(articles_fts, 1, char(1), '')
				FROM articles_fts WHERE articles_fts MATCH ? ORDER BY rowid DESC LIMIT ?
			)
			SELECT id, (SELECT count(*) FROM w) FROM w
			ORDER BY 10 * (length(t) - length(replace(t, char(1), '')))
				+ 4 * (length(d) - length(replace(d, char(1), ''))) DESC, id DESC
			LIMIT ? OFFSET ?`
			args = []any{match, conduit.SearchWindow, q.Limit, q.Offset}
		}
	}
	page := conduit.ArticlePage{Articles: []conduit.Article{}}
	order, count, err := db.searchIDs(ctx, ids, args)
	if err != nil {
		return page, err
	}
	page.Count = count
	if len(order) == 0 && q.Offset > 0 {
		// Past the matches: the page says nothing of their number. Counted
		// as a ranking query (a row of an id and the count) for the plan
		// searchIDs makes: a word that matches nothing must not walk.
		_, page.Count, err = db.searchIDs(ctx, `SELECT 0, count(*) FROM (`+window+`) w`, []any{args[0], conduit.SearchWindow})
		return page, err
	}
	page.Articles, err = db.articlesByID(ctx, viewerID, order)
	return page, err
}

// postgresRankByFields is the ranking query of a PostgreSQL search: the
// window of the newest conduit.SearchWindow matches, ranked as on SQLite
// by the words in each article's title (10 each) and description (4 each),
// a word counted once per field, newest first among equals, with the
// window's size.
//
// The window is a backward walk of article_search's primary key for a
// common word (the planner's choice, by the words' frequencies), and the
// GIN index of its words for a rare one. article_search holds the words
// without positions and nothing else of the article (migration 0019): a
// search of two common words walks ~25,000 rows, which in articles, beside
// the text and with positions, took ten times the pages.
// Each word is its own plainto_tsquery in the score: a word the English
// configuration drops (a stop word such as "the") matches no field and
// scores nothing, as it takes no part in the match.
func postgresRankByFields(q conduit.SearchQuery) (string, []any) {
	args := []any{strings.Join(q.Terms, " "), conduit.SearchWindow}
	var score []string
	for _, t := range q.Terms {
		args = append(args, t, t)
		score = append(score, `10 * (w.title_words @@ plainto_tsquery('english', ?))::int
			+ 4 * (w.description_words @@ plainto_tsquery('english', ?))::int`)
	}
	args = append(args, q.Limit, q.Offset)
	return `SELECT id, count(*) OVER () FROM (
			SELECT article_id AS id, title_words, description_words FROM article_search
			WHERE words @@ plainto_tsquery('english', ?) ORDER BY article_id DESC LIMIT ?
		) w
		ORDER BY ` + strings.Join(score, "\n\t\t\t+ ") + ` DESC, id DESC
		LIMIT ? OFFSET ?`, args
}

// maxTermsByColumn is the most words a SQLite search ranks with column
// filters (sqliteRankByColumns); longer searches are ranked with
// highlight(). Two column queries per word each walk the words' position
// lists across the window's range of ids, and the range grows with every
// word a match must hold: on the full dataset (every word in ~17% of the
// articles) one word's window spans ~5,000 ids, two words' ~22,000, three
// ~87,000 and four ~330,000. Up to two words the column queries cost 2-7x
// less than highlight(); from three on more (docs/performance.md).
const maxTermsByColumn = 2

// sqliteRankByColumns is the ranking query of a SQLite search of at most
// maxTermsByColumn words: the window of the newest conduit.SearchWindow
// matches, ranked by the words in each article's title (10 each) and
// description (4 each), newest first among equals, with the window's
// size. Whether a word is in the title is a second FTS5 query,
// '{title} : "word"' and the other words, over the window's range of ids:
// it reads the index's position lists (which hold the column of every
// occurrence) and never the articles' text, unlike highlight(), which read
// and tokenized the title and description of every row in the window. A
// word counts once per column however often it occurs.
//
// The window's size is counted once from the materialized window rather
// than with count(*) OVER (), which buffered the ranked rows once more and
// kept the sort from keeping only the page's rows (a quarter of a one-word
// search in C SQLite).
func sqliteRankByColumns(q conduit.SearchQuery) (string, []any) {
	args := []any{ftsAll(q.Terms, -1), conduit.SearchWindow}
	var score []string
	for _, c := range []struct {
		name   string
		weight string
	}{{"title", "10"}, {"description", "4"}} {
		for i, t := range q.Terms {
			// The other words narrow the walk to the window's matches: a
			// common word in the title is checked only where a rare other
			// word is, FTS5 skipping between them. They are juxtaposed, as
			// in the window's query, not joined with AND: FTS5 ignores a
			// string without a token (a word the tokenizer reads as
			// separators) beside others, where AND matches nothing.
			m := "{" + c.name + "} : " + ftsString(t)
			if others := ftsAll(q.Terms, i); others != "" {
				m += " " + others
			}
			args = append(args, m)
			score = append(score, c.weight+` * (id IN (SELECT rowid FROM articles_fts
					WHERE articles_fts MATCH ? AND rowid BETWEEN (SELECT lo FROM span) AND (SELECT hi FROM span)))`)
		}
	}
	args = append(args, q.Limit, q.Offset)
	return `WITH w(id) AS MATERIALIZED (
			SELECT rowid FROM articles_fts WHERE articles_fts MATCH ? ORDER BY rowid DESC LIMIT ?
		), span(lo, hi) AS (SELECT min(id), max(id) FROM w)
		SELECT id, (SELECT count(*) FROM w) FROM w
		ORDER BY ` + strings.Join(score, "\n\t\t\t+ ") + ` DESC, id DESC
		LIMIT ? OFFSET ?`, args
}

// ftsString is a word as an FTS5 string: never query syntax.
func ftsString(t string) string { return `"` + strings.ReplaceAll(t, `"`, `""`) + `"` }

// ftsAll is an FTS5 query for the articles having every one of terms
// (but the one at index skip, unless skip is -1).
func ftsAll(terms []string, skip int) string {
	quoted := make([]string, 0, len(terms))
	for i, t := range terms {
		if i != skip {
			quoted = append(quoted, ftsString(t))
		}
	}
	return strings.Join(quoted, " ")
}

// searchIDs runs a search's ranking query, whose rows are an id and the
// number of matches. On PostgreSQL it runs with a plan made for its
// arguments, costed for pages in memory or on SSD (below): a generic plan (pgx prepares statements) cannot tell a rare
// word, best found through the GIN index, from a common one, best found by
// walking the newest articles, and either plan is slow for the other case.
func (db *DB) searchIDs(ctx context.Context, q string, args []any) ([]int64, int, error) {
	var ids []int64
	count := 0
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id, &count); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	}
	if db.d.name != "postgres" {
		rows, err := db.query(ctx, q, args...)
		if err != nil {
			return nil, 0, err
		}
		defer rows.Close() // ends its deadline too
		return ids, count, db.mapErr(scan(rows.Rows))
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, db.mapErr(err)
	}
	defer tx.Rollback()
	// random_page_cost 1.1 (the default, 4, models a spinning disk): the
	// planner's choice between the walk of article_search's primary key
	// and the GIN bitmap for a word it has no statistics of (it assumes
	// 0.5% of the rows) turns on it. With 4 it walks, and for a word
	// that matches nothing the walk reads the whole table (338,000
	// buffers, 9.3 s on the full dataset; docs/performance.md, Issue 14,
	// fifth round); with 1.1 it reads the GIN index (1 ms), and common
	// words still walk.
	if _, err := tx.ExecContext(ctx, `SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
		set_config('random_page_cost', '1.1', true)`); err != nil {
		return nil, 0, db.mapErr(err)
	}
	rows, err := tx.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, 0, db.mapErr(err)
	}
	if err := scan(rows); err != nil {
		return nil, 0, db.mapErr(err)
	}
	return ids, count, db.mapErr(tx.Commit())
}

// articlesByID reads the articles with ids (without bodies), in the order
// of ids, with their tags.
func (db *DB) articlesByID(ctx context.Context, viewerID int64, ids []int64) ([]conduit.Article, error) {
	out := []conduit.Article{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{viewerID, viewerID}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := db.query(ctx, selectArticles(false)+` WHERE a.id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := make(map[int64]conduit.Article, len(ids))
	for rows.Next() {
		a, err := scanArticle(rows)
		if err != nil {
			return nil, db.mapErr(err)
		}
		byID[a.ID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, db.mapErr(err)
	}
	for _, id := range ids {
		if a, ok := byID[id]; ok { // deleted meanwhile: left out
			out = append(out, a)
		}
	}
	return out, db.mapErr(db.loadTags(ctx, out))
}

// prefixEnd is an upper bound for the strings starting with p, compared
// byte by byte: no character sorts after U+10FFFF.
func prefixEnd(p string) string { return p + "\U0010FFFF" }

// UsersByPrefix implements conduit.Store: the users whose names start with
// prefix, ignoring ASCII case, in byte order of the lower-cased name.
func (db *DB) UsersByPrefix(ctx context.Context, viewerID int64, prefix string, limit int) ([]conduit.Profile, error) {
	q, args := db.usersByPrefix(viewerID, prefix, limit)
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []conduit.Profile{}
	for rows.Next() {
		var u conduit.Profile
		if err := rows.Scan(&u.ID, &u.Username, &u.Bio, &u.Image, &u.Following); err != nil {
			return nil, db.mapErr(err)
		}
		out = append(out, u)
	}
	return out, db.mapErr(rows.Err())
}

// usersByPrefix is UsersByPrefix's query, a range of an index in both
// databases. On SQLite that is users_username_key: a valid name's key is
// its ASCII lower case (conduit.UsernameKey), so the range of the
// lower-cased prefix holds exactly the names that start with it in any
// case; the few names kept from before the rule are their own keys and
// match by their exact spelling. (The range once compared lower(username),
// whose index migration 0006 replaced: every search then read and folded
// every user; on the full dataset, searches, 1.3% of the benchmark's
// requests, took 76% of the server's CPU.)
// On PostgreSQL, the text_pattern_ops index of lower(username) of migration
// 0009 (operators ~>=~ and ~<~), read in its order (USING ~<~, byte order
// as COLLATE "C", which the planner does not know for that index's order):
// ordered by COLLATE "C", a prefix every user has ("user" on the seeded
// data, a word of the seed's titles) sorted all 1,000,000 users, 1.7 s cold,
// and two searches of the bench's mix answered 503 after the 5 s timeout
// (docs/performance.md, Issue 14, fifth round); in the index's order it
// stops at the limit (7 ms).
func (db *DB) usersByPrefix(viewerID int64, prefix string, limit int) (string, []any) {
	q := `SELECT u.id, u.username, u.bio, u.image,
			EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = ? AND f.followee_id = u.id)
		FROM users u WHERE u.username_key >= ? AND u.username_key < ?
		ORDER BY u.username_key LIMIT ?`
	if db.d.name == "postgres" {
		q = `SELECT u.id, u.username, u.bio, u.image,
			EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = ? AND f.followee_id = u.id)
		FROM users u WHERE lower(u.username) ~>=~ ? AND lower(u.username) ~<~ ?
		ORDER BY lower(u.username) USING ~<~ LIMIT ?`
	}
	p := strings.ToLower(prefix)
	return q, []any{viewerID, p, prefixEnd(p), limit}
}

// TagsByPrefix implements conduit.Store: the tags in use that start with
// prefix, most used first (a range of tag_counts' key; byte order as
// above).
func (db *DB) TagsByPrefix(ctx context.Context, prefix string, limit int) ([]string, error) {
	// A tag's count is the sum of its slots' rows (migration 0016).
	q := `SELECT tag FROM tag_counts WHERE tag >= ? AND tag < ?
		GROUP BY tag HAVING sum(articles) > 0 ORDER BY sum(articles) DESC, tag LIMIT ?`
	if db.d.name == "postgres" {
		q = `SELECT tag FROM tag_counts WHERE tag ~>=~ ? AND tag ~<~ ?
		GROUP BY tag HAVING sum(articles) > 0 ORDER BY sum(articles) DESC, tag LIMIT ?`
	}
	rows, err := db.query(ctx, q, prefix, prefixEnd(prefix), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, db.mapErr(err)
		}
		out = append(out, t)
	}
	return out, db.mapErr(rows.Err())
}
