package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// CreateArticle inserts a with its tags and sets its ID.
func (db *DB) CreateArticle(ctx context.Context, a *conduit.Article) error {
	if db.d.name == "postgres" {
		return db.createArticleOnce(ctx, a)
	}
	return db.tx(ctx, func(tx *sqlTx) error {
		err := tx.queryRow(ctx, `
			INSERT INTO articles (id, slug, author_id, title, description, body, created_at, updated_at)
			VALUES (`+nextID(tx.d, "articles")+`, ?, ?, ?, ?, ?, ?, ?)
			RETURNING id`,
			a.Slug, a.Author.ID, a.Title, a.Description, a.Body, a.CreatedAt, a.UpdatedAt,
		).Scan(&a.ID)
		if err != nil {
			return err
		}
		if err := claimSlug(ctx, tx, a.Slug, a.ID); err != nil {
			return err
		}
		if err := addArticles(ctx, tx, a.Author.ID, +1); err != nil {
			return err
		}
		if err := tx.enqueue(ctx, conduit.ArticleCreatedJobs(a.ID, a.Author.ID)); err != nil {
			return err
		}
		return insertTags(ctx, tx, a.ID, a.Tags)
	})
}

// nextID is the id of a new row of table (articles or comments), which is
// never an id the table had before: ids name rows in queued jobs, job keys,
// caches and links. SQLite would hand out again the id of the newest row
// once it is deleted, so there the id is above both every id in use and
// the largest ever deleted (id_high, migration 0014; one index probe
// each); PostgreSQL's sequences never reuse one.
func nextID(d dialect, table string) string {
	if d.name != "sqlite" {
		return "DEFAULT"
	}
	return `(SELECT max(coalesce((SELECT max(id) FROM ` + table + `), 0),
		coalesce((SELECT id FROM id_high WHERE name = '` + table + `'), 0)) + 1)`
}

// createArticleOnce is CreateArticle on PostgreSQL in two round trips
// instead of four (BEGIN, the article's INSERT, the rest, COMMIT): the id,
// which the jobs name, is drawn from the articles' sequence first, then
// the article, its slug claim, both counters, the outbox insert and the
// tags with their counts are one statement of data-modifying CTEs, sent
// alone on the same connection (writeOnceAfter; in a transaction only
// under an idempotency claim).
// The foreign keys to the new article are checked at the statement's end,
// when it is there. Being one statement, it also holds the rows it locks
// (the tags' counts, the count's slot) only through its own commit, not
// across a round trip more.
//
// A new article cannot have had its slug before, so a taken slug, in
// articles or article_slugs (an old slug of another article), is a unique
// violation of either, which fails the whole statement: a DuplicateError
// ("slug" is in both constraints' names), and nothing was written.
func (db *DB) createArticleOnce(ctx context.Context, a *conduit.Article) error {
	var id int64
	build := func() (string, []any) {
		q := `WITH art AS (
			INSERT INTO articles (id, slug, author_id, title, description, body, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id),
		slug AS (INSERT INTO article_slugs (slug, article_id) SELECT ?::text, id FROM art RETURNING 1)`
		args := []any{id, a.Slug, a.Author.ID, a.Title, a.Description, a.Body, a.CreatedAt, a.UpdatedAt, a.Slug}
		values, jargs := jobValues(ctx, conduit.ArticleCreatedJobs(id, a.Author.ID), "")
		q += `,
		queued AS (INSERT INTO jobs (kind, key, payload, trace, created_at, run_at) VALUES ` + values + ` RETURNING 1)`
		args = append(args, jargs...)
		// Rows are locked in the order DeleteArticle locks them (see
		// counterSlot): the tags' counts, then the author's row (its
		// update reads counted, so counted runs first), then the count's
		// slot. With the author's row first, a create and a delete of the
		// same author's articles deadlocked on a tag's row.
		afterTags := ""
		if len(a.Tags) > 0 {
			counts, cargs := tagCountValues(db.d, a.Tags)
			q += `,
		tagged AS (INSERT INTO article_tags (article_id, tag) VALUES ` +
				strings.TrimSuffix(strings.Repeat("(?, ?), ", len(a.Tags)), ", ") + ` RETURNING 1),
		counted AS (INSERT INTO tag_counts (tag, slot, articles) VALUES ` + counts + `
			` + tagCountUpsert + ` RETURNING 1)`
			for _, t := range a.Tags {
				args = append(args, id, t)
			}
			args = append(args, cargs...)
			afterTags = ` AND (SELECT count(*) FROM counted) > 0`
		}
		q += `,
		author AS (UPDATE users SET articles_count = articles_count + 1 WHERE id = ?` + afterTags + ` RETURNING 1)`
		args = append(args, a.Author.ID)
		// The count's slot is the last row locked, after the author's and
		// the tags' rows (total reads author, which reads counted, so they
		// run first), as in DeleteArticle: see counterSlot.
		before := "(SELECT count(*) FROM author) a, (SELECT count(*) FROM slug) s"
		q += `,
		total AS (INSERT INTO article_count_slots (slot, value) SELECT ` + counterSlot(db.d) + `, 1 FROM ` + before + `
			` + slotUpsert + ` RETURNING 1)
		SELECT (SELECT count(*) FROM queued), (SELECT count(*) FROM total)`
		return q, args
	}
	err := db.writeOnceAfter(ctx, `SELECT nextval(pg_get_serial_sequence('articles', 'id'))`, &id, build, func(r *sql.Row, tx *sqlTx) error {
		var queued, counted int64
		if err := r.Scan(&queued, &counted); err != nil {
			return err
		}
		tx.enqueued = queued > 0
		return nil
	})
	if err != nil {
		return db.mapErr(err)
	}
	a.ID = id
	return nil
}

// claimSlug records slug as one of the article's slugs (migration 0008).
// A slug another article has, or had, is a DuplicateError, so the caller
// picks another: an old link never changes which article it names.
func claimSlug(ctx context.Context, tx *sqlTx, slug string, articleID int64) error {
	res, err := tx.exec(ctx, `INSERT INTO article_slugs (slug, article_id) VALUES (?, ?) ON CONFLICT (slug) DO NOTHING`,
		slug, articleID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var owner int64
	if err := tx.queryRow(ctx, `SELECT article_id FROM article_slugs WHERE slug = ?`, slug).Scan(&owner); err != nil {
		return err
	}
	if owner != articleID {
		return &conduit.DuplicateError{Field: "slug"}
	}
	return nil // back to one of its own earlier slugs
}

// CurrentSlug returns the slug now used by the article that has, or had,
// slug; ErrNotFound if no existing article ever had it.
func (db *DB) CurrentSlug(ctx context.Context, slug string) (string, error) {
	var cur string
	err := db.queryRow(ctx, `
		SELECT a.slug FROM article_slugs s JOIN articles a ON a.id = s.article_id
		WHERE s.slug = ?`, slug).Scan(&cur)
	return cur, db.mapErr(err)
}

// counterSlots is how many rows the global article count and each tag's
// count are spread over on PostgreSQL (migrations 0015, 0016); more than a
// pool's connections rarely gain anything, as a connection only ever
// writes its own slot.
const counterSlots = 16

// counterSlot is the slot of the article count and of the tags' counts a
// write adds to: on PostgreSQL the one of this connection's backend, so
// that creates and deletes on different connections do not wait for one
// row's lock through each other's commits; on SQLite, one writer at a
// time, slot 0. Two backends may share a slot, so a write locks its rows
// in one order: the tags' in tag order (sortedTags), then the author's
// row, then the article count's slot last. A transaction waiting for
// the count's slot then holds every other row it will lock, and a wait for
// a slot never closes a deadlock cycle. The upserts make a slot's row the
// first time it is used.
func counterSlot(d dialect) string {
	if d.name == "postgres" {
		return fmt.Sprintf("pg_backend_pid() %% %d", counterSlots)
	}
	return "0"
}

const slotUpsert = `ON CONFLICT (slot) DO UPDATE SET value = article_count_slots.value + excluded.value`

// tagCountUpsert adds to a tag's row of a slot (migration 0016).
const tagCountUpsert = `ON CONFLICT (tag, slot) DO UPDATE SET articles = tag_counts.articles + excluded.articles`

// sortedTags is tags in the order their count rows are locked.
func sortedTags(tags []string) []string {
	s := slices.Clone(tags)
	slices.Sort(s)
	return s
}

// tagCountValues is the VALUES list adding 1 to each tag's row of the
// writer's slot, in tag order, and its arguments.
func tagCountValues(d dialect, tags []string) (string, []any) {
	args := make([]any, 0, len(tags))
	for _, t := range sortedTags(tags) {
		args = append(args, t)
	}
	row := "(?, " + counterSlot(d) + ", 1), "
	return strings.TrimSuffix(strings.Repeat(row, len(tags)), ", "), args
}

// addArticles moves the article counter and the author's by delta.
func addArticles(ctx context.Context, tx *sqlTx, authorID int64, delta int) error {
	if _, err := tx.exec(ctx, `UPDATE users SET articles_count = articles_count + ? WHERE id = ?`, delta, authorID); err != nil {
		return err
	}
	// Last, after the author's row: see counterSlot.
	_, err := tx.exec(ctx, `INSERT INTO article_count_slots (slot, value) VALUES (`+counterSlot(tx.d)+`, ?) `+slotUpsert, delta)
	return err
}

func insertTags(ctx context.Context, tx *sqlTx, articleID int64, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(tags))
	for _, t := range tags {
		args = append(args, articleID, t)
	}
	q := `INSERT INTO article_tags (article_id, tag) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?), ", len(tags)), ", ")
	if _, err := tx.exec(ctx, q, args...); err != nil {
		return err
	}
	counts, cargs := tagCountValues(tx.d, tags)
	_, err := tx.exec(ctx, `INSERT INTO tag_counts (tag, slot, articles) VALUES `+counts+` `+tagCountUpsert, cargs...)
	return err
}

// removeTags deletes the article's tags and takes 1 from each tag's row
// of the writer's slot (which may go below 0 on PostgreSQL: the tag's
// article may have been counted in another slot). A row of this slot that
// reaches 0 is deleted, so unused tags do not pile up in the slot; rows of
// other slots are left to their writers, whose row locks this statement
// does not take.
func removeTags(ctx context.Context, tx *sqlTx, articleID int64) error {
	slot := counterSlot(tx.d)
	if _, err := tx.exec(ctx, `
		INSERT INTO tag_counts (tag, slot, articles)
		SELECT tag, `+slot+`, -1 FROM article_tags WHERE article_id = ? ORDER BY tag
		`+tagCountUpsert, articleID); err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `
		DELETE FROM tag_counts
		WHERE slot = `+slot+` AND articles = 0
		  AND tag IN (SELECT tag FROM article_tags WHERE article_id = ?)`, articleID); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `DELETE FROM article_tags WHERE article_id = ?`, articleID)
	return err
}

// UpdateArticle writes the editable fields of a and replaces its tags.
func (db *DB) UpdateArticle(ctx context.Context, a *conduit.Article) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.exec(ctx, `
			UPDATE articles
			SET slug = ?, title = ?, description = ?, body = ?, updated_at = ?,
			    body_html = '', body_html_version = 0
			WHERE id = ?`,
			a.Slug, a.Title, a.Description, a.Body, a.UpdatedAt, a.ID)
		if err := mustAffect(res, err); err != nil {
			return err
		}
		if err := claimSlug(ctx, tx, a.Slug, a.ID); err != nil {
			return err
		}
		if err := removeTags(ctx, tx, a.ID); err != nil {
			return err
		}
		return insertTags(ctx, tx, a.ID, a.Tags)
	})
}

// DeleteArticle removes the article; its tags, favorites and comments go
// with it (ON DELETE CASCADE), and its comment counter.
func (db *DB) DeleteArticle(ctx context.Context, id int64) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		if err := removeTags(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM comment_counts WHERE article_id = ?`, id); err != nil {
			return err
		}
		var authorID int64
		err := tx.queryRow(ctx, `DELETE FROM articles WHERE id = ? RETURNING author_id`, id).Scan(&authorID)
		if errors.Is(err, sql.ErrNoRows) {
			return conduit.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := tx.enqueue(ctx, conduit.ArticleDeletedJobs(id, authorID)); err != nil {
			return err
		}
		return addArticles(ctx, tx, authorID, -1)
	})
}

// SetArticleHTML stores the rendering of the article's body, unless the
// body is no longer body or the stored rendering is as new.
func (db *DB) SetArticleHTML(ctx context.Context, id int64, body, html string, version int) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		_, err := tx.exec(ctx, `
			UPDATE articles SET body_html = ?, body_html_version = ?
			WHERE id = ? AND body = ? AND body_html_version < ?`, html, version, id, body, version)
		return err
	})
}

// articleSelect reads an article with its author and the viewer's flags.
// The two EXISTS take the viewer id (0 for anonymous: no rows match).
const articleSelect = `
	SELECT a.id, a.slug, a.title, a.description, %s, a.created_at, a.updated_at,
	       a.favorites_count, u.id, u.username, u.bio, u.image,
	       EXISTS (SELECT 1 FROM favorites f WHERE f.user_id = ? AND f.article_id = a.id),
	       EXISTS (SELECT 1 FROM follows fo WHERE fo.follower_id = ? AND fo.followee_id = a.author_id)
	FROM articles a
	JOIN users u ON u.id = a.author_id`

func selectArticles(withBody bool) string {
	body := "'', '', 0"
	if withBody {
		body = "a.body, a.body_html, a.body_html_version"
	}
	return strings.Replace(articleSelect, "%s", body, 1)
}

func scanArticle(row interface{ Scan(...any) error }) (conduit.Article, error) {
	var a conduit.Article
	err := row.Scan(&a.ID, &a.Slug, &a.Title, &a.Description, &a.Body, &a.BodyHTML, &a.BodyHTMLVersion, &a.CreatedAt, &a.UpdatedAt,
		&a.FavoritesCount, &a.Author.ID, &a.Author.Username, &a.Author.Bio, &a.Author.Image,
		&a.Favorited, &a.Author.Following)
	return a, err
}

var articleBySlugQuery = selectArticles(true) + ` WHERE a.slug = ?`

// ArticleBySlug returns one article with its body and tags.
func (db *DB) ArticleBySlug(ctx context.Context, viewerID int64, slug string) (conduit.Article, error) {
	a, err := scanArticle(db.queryRow(ctx, articleBySlugQuery, viewerID, viewerID, slug))
	if err != nil {
		return conduit.Article{}, db.mapErr(err)
	}
	list := []conduit.Article{a}
	if err := db.loadTags(ctx, list); err != nil {
		return conduit.Article{}, db.mapErr(err)
	}
	return list[0], nil
}

// pageSelect reads the full rows of a page of article ids (the subquery,
// newest first) with their authors and the viewer's flags. Paging on ids
// alone first (a "deferred join") keeps an offset cheap: the skipped rows
// are index entries, not joined articles.
var pageSelect = strings.Replace(selectArticles(false), "FROM articles a",
	"FROM (%s) p\n\tJOIN articles a ON a.id = p.id", 1) + `
	ORDER BY a.id DESC`

// listQuery is how one kind of list counts its articles and pages their ids.
type listQuery struct {
	// count returns the number of articles in the list; it takes args.
	count string
	// ids selects "id" newest first; it takes args. %s is where a keyset
	// bound goes (" AND <col> < ?"); boundCol names the id column.
	ids, boundCol string
}

// everyArticle is the global list. On SQLite its ids come from
// articles_id_idx (migration 0017), not from the table's rows.
var everyArticle = listQuery{
	count:    `SELECT coalesce((SELECT CAST(sum(value) AS bigint) FROM article_count_slots), 0)`,
	ids:      `SELECT id FROM articles WHERE 1 = 1%s ORDER BY id DESC`,
	boundCol: "id",
}

// ListArticles returns a page of articles, newest first, and the total
// count for the filter: three queries whatever the page size.
func (db *DB) ListArticles(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	switch {
	case f.Tag == "" && f.Author == "" && f.FavoritedBy == "":
		return db.articlePage(ctx, viewerID, everyArticle, nil, f)
	case f.Author == "" && f.FavoritedBy == "":
		// One tag: count from tag_counts, and walk the tag's index newest
		// first instead of collecting all its articles.
		return db.articlePage(ctx, viewerID, listQuery{
			count:    `SELECT coalesce((SELECT CAST(sum(articles) AS bigint) FROM tag_counts WHERE tag = ?), 0)`,
			ids:      `SELECT article_id AS id FROM article_tags WHERE tag = ?%s ORDER BY article_id DESC`,
			boundCol: "article_id",
		}, []any{f.Tag}, f)
	case f.Tag == "" && f.FavoritedBy == "":
		// One author: a range of articles_author_idx (author_id, id DESC).
		author := `(SELECT id FROM users WHERE username_key = ?)`
		return db.articlePage(ctx, viewerID, listQuery{
			count:    `SELECT coalesce((SELECT articles_count FROM users WHERE username_key = ?), 0)`,
			ids:      `SELECT id FROM articles WHERE author_id = ` + author + `%s ORDER BY id DESC`,
			boundCol: "id",
		}, []any{conduit.UsernameKey(f.Author)}, f)
	case f.Tag == "" && f.Author == "":
		// Favorited by one user: a range of the favorites primary key
		// (user_id, article_id).
		user := `(SELECT id FROM users WHERE username_key = ?)`
		return db.articlePage(ctx, viewerID, listQuery{
			count:    `SELECT count(*) FROM favorites WHERE user_id = ` + user,
			ids:      `SELECT article_id AS id FROM favorites WHERE user_id = ` + user + `%s ORDER BY article_id DESC`,
			boundCol: "article_id",
		}, []any{conduit.UsernameKey(f.FavoritedBy)}, f)
	}
	// Combined filters (rare): the general form.
	var where []string
	var args []any
	if f.Tag != "" {
		where = append(where, `a.id IN (SELECT article_id FROM article_tags WHERE tag = ?)`)
		args = append(args, f.Tag)
	}
	if f.Author != "" {
		where = append(where, `a.author_id = (SELECT id FROM users WHERE username_key = ?)`)
		args = append(args, conduit.UsernameKey(f.Author))
	}
	if f.FavoritedBy != "" {
		where = append(where, `a.id IN (SELECT article_id FROM favorites
			WHERE user_id = (SELECT id FROM users WHERE username_key = ?))`)
		args = append(args, conduit.UsernameKey(f.FavoritedBy))
	}
	cond := strings.Join(where, " AND ")
	return db.articlePage(ctx, viewerID, listQuery{
		count:    `SELECT count(*) FROM articles a WHERE ` + cond,
		ids:      `SELECT a.id FROM articles a WHERE ` + cond + `%s ORDER BY a.id DESC`,
		boundCol: "a.id",
	}, args, f)
}

// feedOnRead returns the newest articles of the authors viewerID follows:
// fan-out on read (the feed of users without a built timeline, and of pages
// below a timeline's horizon; see Feed), with one of two plans for the page's ids chosen from the count:
//
//   - per followee: one range of articles_author_idx per followee (index
//     entries only), the newest limit+offset kept by a bounded sort. Its
//     cost grows with the candidates (all the followees' articles).
//   - newest first: walk articles by id downwards, keeping those whose
//     author is followed (a follows primary-key probe each). Its cost grows
//     with the rows walked, about (offset+limit) × articles / candidates:
//     small for a user whose followees wrote a large share of the articles
//     (celebrities, many followees).
//
// The walk is bounded to an id window a few times the expected length; if
// the window holds too few (the followees wrote little lately), the
// per-followee plan runs instead, so neither plan is ever unbounded.
func (db *DB) feedOnRead(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	// The count sums the followees' articles_count: one primary-key probe
	// per followee, however much they wrote.
	var count int
	if err := db.queryRow(ctx, `
		SELECT coalesce(sum(u.articles_count), 0) FROM follows f JOIN users u ON u.id = f.followee_id
		WHERE f.follower_id = ?`, viewerID).Scan(&count); err != nil {
		return conduit.ArticlePage{}, db.mapErr(err)
	}
	lo, ok, err := db.feedWindow(ctx, count, f)
	if err != nil {
		return conduit.ArticlePage{}, err
	}
	if ok {
		page, err := db.pageOf(ctx, viewerID, count, `
			SELECT a.id FROM articles a
			WHERE a.id >= ?%s
			  AND EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = ? AND f.followee_id = a.author_id)
			ORDER BY a.id DESC`, "a.id", []any{lo}, []any{viewerID}, f)
		// A full page (with the extra id that says more follow) proves the
		// window held the page; a short one may have been cut by it.
		if err != nil || page.Next != 0 {
			return page, err
		}
	}
	if db.d.name == "postgres" {
		// The same plan spelled out with LATERAL, each followee giving at
		// most the rows the page needs. The plain join below would do on
		// PostgreSQL too, but once prepared it gets a generic plan (walk
		// articles_pkey backwards, probing follows), chosen because it suits
		// heavy readers: for a user following a few quiet accounts it walks
		// the whole table (measured: the 5 s statement timeout).
		return db.pageOf(ctx, viewerID, count, `
			SELECT x.id FROM follows f
			CROSS JOIN LATERAL (
				SELECT a.id FROM articles a
				WHERE a.author_id = f.followee_id%s
				ORDER BY a.id DESC LIMIT ?
			) x
			WHERE f.follower_id = ? ORDER BY x.id DESC`, "a.id", nil, []any{f.Offset + f.Limit + 1, viewerID}, f)
	}
	return db.pageOf(ctx, viewerID, count, `
		SELECT a.id FROM follows f JOIN articles a ON a.author_id = f.followee_id
		WHERE f.follower_id = ?%s ORDER BY a.id DESC`, "a.id", []any{viewerID}, nil, f)
}

// feedWindow decides the feed's plan: ok if walking articles newest first
// is expected to read fewer rows than the per-followee plan, with lo the
// lowest id of the window to walk.
func (db *DB) feedWindow(ctx context.Context, candidates int, f conduit.ArticleFilter) (lo int64, ok bool, err error) {
	if candidates == 0 {
		return 0, false, nil
	}
	var top int64
	if err := db.queryRow(ctx, `SELECT coalesce(max(id), 0) FROM articles`).Scan(&top); err != nil {
		return 0, false, db.mapErr(err)
	}
	if f.Before > 0 {
		top = min(top, f.Before-1)
	}
	need := int64(f.Offset + f.Limit + 1)
	// Rows walked per candidate found, if the candidates were spread evenly
	// over the ids: top / candidates. Walk a window four times that.
	window := 4*need*top/int64(candidates) + 100
	if window >= int64(candidates) || window >= top {
		return 0, false, nil
	}
	return top - window, true, nil
}

// articlePage counts the list and reads one page of it.
func (db *DB) articlePage(ctx context.Context, viewerID int64, lq listQuery, args []any, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	var count int
	if err := db.queryRow(ctx, lq.count, args...).Scan(&count); err != nil {
		return conduit.ArticlePage{}, db.mapErr(err)
	}
	return db.pageOf(ctx, viewerID, count, lq.ids, lq.boundCol, args, nil, f)
}

// pageOf reads one page of a list of count articles whose ids the query ids
// selects newest first: by offset, or after a keyset bound (f.Before: ids
// below it), which goes where ids has %s, on boundCol, between the
// arguments pre and post. It reads one id more than the page to know
// whether a next page exists (page.Next).
func (db *DB) pageOf(ctx context.Context, viewerID int64, count int, ids, boundCol string, pre, post []any, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	page := conduit.ArticlePage{Count: count, Articles: []conduit.Article{}}
	if page.Count <= f.Offset {
		return page, nil
	}
	q, all := pageQuery(viewerID, ids, boundCol, pre, post, f)
	articles, err := db.articlesOf(ctx, q, all...)
	if err != nil {
		return page, err
	}
	page.Articles = articles
	if len(page.Articles) > f.Limit {
		page.Articles = page.Articles[:f.Limit]
		page.Next = page.Articles[f.Limit-1].ID
	}
	return page, db.mapErr(db.loadTags(ctx, page.Articles))
}

// pageQuery is pageOf's query of one page and its arguments.
func pageQuery(viewerID int64, ids, boundCol string, pre, post []any, f conduit.ArticleFilter) (string, []any) {
	bound := ""
	all := append([]any{viewerID, viewerID}, pre...)
	if f.Before > 0 {
		bound = " AND " + boundCol + " < ?"
		all = append(all, f.Before)
	}
	all = append(all, post...)
	all = append(all, f.Limit+1, f.Offset)
	return fmt.Sprintf(pageSelect, fmt.Sprintf(ids, bound)+` LIMIT ? OFFSET ?`), all
}

// articlesOf runs a query of pageSelect and returns its articles, without
// their tags.
func (db *DB) articlesOf(ctx context.Context, q string, args ...any) ([]conduit.Article, error) {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, db.mapErr(err)
	}
	defer rows.Close()
	articles := []conduit.Article{}
	for rows.Next() {
		a, err := scanArticle(rows)
		if err != nil {
			return nil, db.mapErr(err)
		}
		articles = append(articles, a)
	}
	return articles, db.mapErr(rows.Err())
}

// loadTags fills the tags of all articles with one query.
func (db *DB) loadTags(ctx context.Context, articles []conduit.Article) error {
	if len(articles) == 0 {
		return nil
	}
	ids := make([]any, len(articles))
	for i := range articles {
		ids[i] = articles[i].ID
		articles[i].Tags = []string{}
	}
	rows, err := db.query(ctx, `
		SELECT article_id, tag FROM article_tags
		WHERE article_id IN (`+placeholders(len(ids))+`)
		ORDER BY article_id, tag`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	// The rows come grouped by article: each article's tags are a slice
	// of one shared array (capped, so an append by a caller copies), and
	// the article is found by a scan when the id changes. A map and a
	// slice per article cost ~3 allocations per article on every list.
	all := make([]string, 0, 3*len(articles))
	cur, start := -1, 0
	flush := func() {
		if cur >= 0 && len(all) > start {
			articles[cur].Tags = all[start:len(all):len(all)]
		}
	}
	for rows.Next() {
		var id int64
		var tag string
		if err := rows.Scan(&id, &tag); err != nil {
			return err
		}
		if cur < 0 || articles[cur].ID != id {
			flush()
			if len(all) == cap(all) {
				// Keep earlier tags where they are: a new array for the rest.
				all = make([]string, 0, 3*len(articles))
			}
			cur, start = -1, len(all)
			for i := range articles {
				if articles[i].ID == id {
					cur = i
					break
				}
			}
			if cur < 0 {
				continue
			}
		}
		if len(all) == cap(all) {
			// This article's tags move to a new, larger array.
			grown := make([]string, len(all)-start, 2*cap(all))
			copy(grown, all[start:])
			all, start = grown, 0
		}
		all = append(all, tag)
	}
	flush()
	return rows.Err()
}

// Favorite adds the favorite if absent and returns the article's count.
func (db *DB) Favorite(ctx context.Context, userID, articleID, authorID int64) (conduit.FavoriteChange, error) {
	return db.changeFavorite(ctx, articleID, authorID, +1, `
		INSERT INTO favorites (user_id, article_id, created_at)
		VALUES (?, ?, CURRENT_TIMESTAMP)
		ON CONFLICT DO NOTHING`, userID, conduit.FavoritedJobs(userID, articleID))
}

// Unfavorite removes the favorite if present and returns the count.
func (db *DB) Unfavorite(ctx context.Context, userID, articleID, authorID int64) (conduit.FavoriteChange, error) {
	return db.changeFavorite(ctx, articleID, authorID, -1, `
		DELETE FROM favorites WHERE user_id = ? AND article_id = ?`, userID, nil)
}

// followsAuthor is the counter update's second returned column: whether
// the user follows the article's author, which the answer shows. Read by
// the write's own statement, it costs no statement (nor, on PostgreSQL, a
// pooled connection) of its own.
const followsAuthor = `EXISTS (SELECT 1 FROM follows WHERE follower_id = ? AND followee_id = ?)`

// changeFavorite runs change and, only if it touched a row, moves the
// counter by delta and enqueues jobs in the same transaction, so the count
// stays exact and a repeat causes no work.
func (db *DB) changeFavorite(ctx context.Context, articleID, authorID int64, delta int, change string, userID int64, jobs []conduit.Job) (conduit.FavoriteChange, error) {
	if db.d.name == "postgres" {
		return db.changeFavoriteOnce(ctx, articleID, authorID, delta, change, userID, jobs)
	}
	var fc conduit.FavoriteChange
	err := db.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.exec(ctx, change, userID, articleID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			delta = 0
		} else if err := tx.enqueue(ctx, jobs); err != nil {
			return err
		}
		return tx.queryRow(ctx, `
			UPDATE articles SET favorites_count = favorites_count + ?
			WHERE id = ?
			RETURNING favorites_count, `+followsAuthor,
			delta, articleID, userID, authorID).Scan(&fc.Count, &fc.FollowsAuthor)
	})
	return fc, err
}

// FavoritesCount returns the article's favorites counter.
func (db *DB) FavoritesCount(ctx context.Context, articleID int64) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT favorites_count FROM articles WHERE id = ?`, articleID).Scan(&n)
	return n, db.mapErr(err)
}

// changeFavoriteOnce is changeFavorite in one PostgreSQL statement instead
// of two or three (the change, the outbox insert, the counter), sent alone
// (writeOnce): data-modifying CTEs, each of which runs once and to the
// end, all in the statement's snapshot. The jobs and the
// counter's move depend on whether the change touched a row, as above.
func (db *DB) changeFavoriteOnce(ctx context.Context, articleID, authorID int64, delta int, change string, userID int64, jobs []conduit.Job) (conduit.FavoriteChange, error) {
	q := `WITH changed AS (` + change + ` RETURNING 1)`
	args := []any{userID, articleID}
	enqueued := `0`
	if len(jobs) > 0 {
		values, jargs := jobValues(ctx, jobs, "::")
		q += `, queued AS (
			INSERT INTO jobs (kind, key, payload, trace, created_at, run_at)
			SELECT v.* FROM (VALUES ` + values + `) AS v
			WHERE EXISTS (SELECT 1 FROM changed) RETURNING 1)`
		args = append(args, jargs...)
		enqueued = `(SELECT count(*) FROM queued)` // wake the workers?
	}
	q += `
		UPDATE articles SET favorites_count = favorites_count + ? * (SELECT count(*) FROM changed)
		WHERE id = ?
		RETURNING favorites_count, ` + followsAuthor + `, ` + enqueued
	args = append(args, delta, articleID, userID, authorID)
	var fc conduit.FavoriteChange
	err := db.writeOnce(ctx, q, args, func(r *sql.Row, tx *sqlTx) error {
		var n int64
		if err := r.Scan(&fc.Count, &fc.FollowsAuthor, &n); err != nil {
			return err
		}
		tx.enqueued = n > 0
		return nil
	})
	return fc, err
}

// IsFavorited reports whether userID has favorited articleID.
func (db *DB) IsFavorited(ctx context.Context, userID, articleID int64) (bool, error) {
	var ok bool
	err := db.queryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM favorites WHERE user_id = ? AND article_id = ?)`,
		userID, articleID).Scan(&ok)
	return ok, db.mapErr(err)
}

// ViewerMarks implements conduit.Store: the viewer's favorites among
// articleIDs and follows among authorIDs, in one statement of two
// primary-key probes per id.
func (db *DB) ViewerMarks(ctx context.Context, userID int64, articleIDs, authorIDs []int64) (favorited, following map[int64]bool, err error) {
	favorited, following = map[int64]bool{}, map[int64]bool{}
	if len(articleIDs)+len(authorIDs) == 0 {
		return favorited, following, nil
	}
	// An empty IN list is not SQL: 0 is no id.
	ids := func(v []int64) []int64 {
		if len(v) == 0 {
			return []int64{0}
		}
		return v
	}
	articleIDs, authorIDs = ids(articleIDs), ids(authorIDs)
	args := append(append([]any{userID}, anys(articleIDs)...), userID)
	args = append(args, anys(authorIDs)...)
	rs, err := db.query(ctx, `
		SELECT 0, article_id FROM favorites WHERE user_id = ? AND article_id IN (`+placeholders(len(articleIDs))+`)
		UNION ALL
		SELECT 1, followee_id FROM follows WHERE follower_id = ? AND followee_id IN (`+placeholders(len(authorIDs))+`)`,
		args...)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var kind, id int64
		if err := rs.Scan(&kind, &id); err != nil {
			return nil, nil, db.mapErr(err)
		}
		if kind == 0 {
			favorited[id] = true
		} else {
			following[id] = true
		}
	}
	return favorited, following, db.mapErr(rs.Err())
}

// Tags lists tags in use, most used first.
func (db *DB) Tags(ctx context.Context) ([]string, error) {
	rows, err := db.query(ctx, `
		SELECT tag FROM tag_counts
		GROUP BY tag HAVING sum(articles) > 0
		ORDER BY sum(articles) DESC, tag
		LIMIT 100`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tags := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, db.mapErr(err)
		}
		tags = append(tags, t)
	}
	return tags, db.mapErr(rows.Err())
}

// mustAffect turns "no row changed" into ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return conduit.ErrNotFound
	}
	return nil
}
