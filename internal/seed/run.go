package seed

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
)

// Run generates the dataset and writes it to sink, then lets the sink
// finish (build indexes). Generation runs in one goroutine and writing in
// another, so that on two cores they overlap.
func Run(ctx context.Context, sink Sink, opts Options) (Result, error) {
	start := time.Now()
	g, err := newGenerator(opts)
	if err != nil {
		return Result{}, err
	}
	g.prepare()
	res := Result{Plan: g.plan, Prepare: time.Since(start), Tables: map[string]time.Duration{}}
	if opts.Start != nil {
		opts.Start(g.plan)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		table string
		rows  int
		write func(context.Context) error
	}
	batches := make(chan batch, 4)
	genErr := make(chan error, 1)
	go func() {
		defer close(batches)
		emit := func(table string, rows int, write func(context.Context) error) bool {
			select {
			case batches <- batch{table, rows, write}:
				return true
			case <-ctx.Done():
				return false
			}
		}
		genErr <- g.generate(ctx, sink, emit)
	}()

	var writeErr error
	first := map[string]time.Time{}
	for b := range batches {
		if writeErr != nil {
			continue // drain so the generator can stop
		}
		if _, ok := first[b.table]; !ok {
			first[b.table] = time.Now()
		}
		if err := b.write(ctx); err != nil {
			writeErr = fmt.Errorf("write %s: %w", b.table, err)
			cancel()
			continue
		}
		res.Tables[b.table] = time.Since(first[b.table])
		if opts.Progress != nil {
			opts.Progress(b.table, b.rows)
		}
	}
	if writeErr != nil {
		return res, writeErr
	}
	if err := <-genErr; err != nil {
		return res, err
	}
	fin := time.Now()
	if err := sink.Finish(ctx, opts.Step); err != nil {
		return res, fmt.Errorf("finish: %w", err)
	}
	res.Finish = time.Since(fin)
	res.Total = time.Since(start)
	return res, nil
}

// emitFunc hands a batch to the writer; false means the run stopped.
type emitFunc func(table string, rows int, write func(context.Context) error) bool

// generate produces every row in table order. Rows of one batch are fresh
// slices, handed over to the writer goroutine.
func (g *generator) generate(ctx context.Context, sink Sink, emit emitFunc) error {
	n := g.opts.Batch
	stopped := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("seed: stopped")
	}

	// Users.
	users := make([]store.UserRow, 0, n)
	flushUsers := func() bool {
		rows := users
		users = make([]store.UserRow, 0, n)
		return emit("users", len(rows), func(ctx context.Context) error { return sink.Users(ctx, rows) })
	}
	for id := int64(1); id <= int64(g.users); id++ {
		r := g.rng(streamUser, id)
		bio := ""
		if r.IntN(2) == 0 {
			bio = string(sentence(nil, r, 4+r.IntN(10)))
		}
		name := username(id)
		users = append(users, store.UserRow{
			ID: id, Username: name, Email: name + "@example.com", PasswordHash: g.opts.PasswordHash,
			Bio: bio, CreatedAt: g.userTime(id),
		})
		if len(users) == n && !flushUsers() {
			return stopped()
		}
	}
	if len(users) > 0 && !flushUsers() {
		return stopped()
	}

	// Follows, in primary key order (follower, followee).
	follows := make([]store.FollowRow, 0, n)
	flushFollows := func() bool {
		rows := follows
		follows = make([]store.FollowRow, 0, n)
		return emit("follows", len(rows), func(ctx context.Context) error { return sink.Follows(ctx, rows) })
	}
	var ids []int64
	for f := int64(1); f <= int64(g.users); f++ {
		ids = g.followeesOf(ids, f)
		if len(ids) == 0 {
			continue
		}
		r := g.rng(streamFollows+100, f)
		ft := g.userTime(f)
		for _, e := range ids {
			t := ft
			if et := g.userTime(e); et.After(t) {
				t = et
			}
			follows = append(follows, store.FollowRow{FollowerID: f, FolloweeID: e, CreatedAt: later(t, r)})
			if len(follows) == n && !flushFollows() {
				return stopped()
			}
		}
	}
	if len(follows) > 0 && !flushFollows() {
		return stopped()
	}

	// Articles, then their tags.
	articles := make([]store.ArticleRow, 0, n)
	flushArticles := func() bool {
		rows := articles
		articles = make([]store.ArticleRow, 0, n)
		return emit("articles", len(rows), func(ctx context.Context) error { return sink.Articles(ctx, rows) })
	}
	for id := int64(1); id <= int64(g.articles); id++ {
		r := g.rng(streamArticle, id)
		author := g.userPerm.id(g.authorLaw.draw(r))
		t := title(r, 3+r.IntN(6))
		articles = append(articles, store.ArticleRow{
			ID: id, Slug: conduit.Slugify(t) + "-" + strconv.FormatInt(id, 36), AuthorID: author,
			Title: t, Description: string(sentence(nil, r, 6+r.IntN(10))), Body: paragraphs(r, 1+r.IntN(3)),
			FavoritesCount: int(g.favCount[id-1]), CreatedAt: g.articleTime(id),
		})
		if len(articles) == n && !flushArticles() {
			return stopped()
		}
	}
	if len(articles) > 0 && !flushArticles() {
		return stopped()
	}
	tags := make([]store.ArticleTagRow, 0, n)
	flushTags := func() bool {
		rows := tags
		tags = make([]store.ArticleTagRow, 0, n)
		return emit("article_tags", len(rows), func(ctx context.Context) error { return sink.ArticleTags(ctx, rows) })
	}
	var tagIdx []int
	for id := int64(1); id <= int64(g.articles); id++ {
		tagIdx = g.tagsOf(tagIdx, id)
		for _, t := range tagIdx {
			tags = append(tags, store.ArticleTagRow{ArticleID: id, Tag: g.tags[t]})
			if len(tags) == n && !flushTags() {
				return stopped()
			}
		}
	}
	if len(tags) > 0 && !flushTags() {
		return stopped()
	}

	// Favorites, in primary key order (user, article).
	favs := make([]store.FavoriteRow, 0, n)
	flushFavs := func() bool {
		rows := favs
		favs = make([]store.FavoriteRow, 0, n)
		return emit("favorites", len(rows), func(ctx context.Context) error { return sink.Favorites(ctx, rows) })
	}
	for u := int64(1); u <= int64(g.users); u++ {
		ids = g.favoritesOf(ids, u)
		if len(ids) == 0 {
			continue
		}
		r := g.rng(streamFavorites+100, u)
		for _, a := range ids {
			favs = append(favs, store.FavoriteRow{UserID: u, ArticleID: a, CreatedAt: later(g.articleTime(a), r)})
			if len(favs) == n && !flushFavs() {
				return stopped()
			}
		}
	}
	if len(favs) > 0 && !flushFavs() {
		return stopped()
	}

	// Comments.
	comments := make([]store.CommentRow, 0, n)
	flushComments := func() bool {
		rows := comments
		comments = make([]store.CommentRow, 0, n)
		return emit("comments", len(rows), func(ctx context.Context) error { return sink.Comments(ctx, rows) })
	}
	for id := int64(1); id <= g.plan.Comments; id++ {
		r := g.rng(streamComment, id)
		a := g.artPerm.id(g.commentLaw.draw(r))
		comments = append(comments, store.CommentRow{
			ID: id, ArticleID: a, AuthorID: g.userPerm.id(g.userLaw.draw(r)),
			Body: string(sentence(nil, r, 5+r.IntN(20))), CreatedAt: later(g.articleTime(a), r),
		})
		if len(comments) == n && !flushComments() {
			return stopped()
		}
	}
	if len(comments) > 0 && !flushComments() {
		return stopped()
	}
	return nil
}
