package conduit_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// recordingPurger keeps the keys of every purge.
type recordingPurger struct {
	mu   sync.Mutex
	keys []string
}

func (p *recordingPurger) Purge(keys ...string) {
	p.mu.Lock()
	p.keys = append(p.keys, keys...)
	p.mu.Unlock()
}

func (p *recordingPurger) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys
	p.keys = nil
	return k
}

// anonymousView is one answer an edge may keep: what it shows and the
// edge keys the surfaces tag it with.
type anonymousView struct {
	content string
	keys    []string
	ok      bool // false: an error, which no edge keeps
}

// TestPurgeCoversEveryChangedAnswer checks, for a sequence of writes of
// every kind, that each anonymous answer whose content a write changed
// carried (before the write) a key that the write purged. That is what
// makes purge-on-write keep an edge fresh: an answer the purge misses would
// be served stale until it expires.
func TestPurgeCoversEveryChangedAnswer(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		p := &recordingPurger{}
		svc := conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4}, conduit.WithPurger(p))
		register := func(name string) conduit.User {
			u, err := svc.Register(ctx, conduit.NewUser{Username: name, Email: name + "@example.com", Password: "password1"})
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		alice, bob := register("alice"), register("bob")
		var slugs []string
		var commentID int64

		names := []string{"alice", "bob", "alice2"}
		views := func() map[string]anonymousView {
			out := map[string]anonymousView{}
			add := func(name string, v any, keys []string, err error) {
				b, _ := json.Marshal(v)
				out[name] = anonymousView{content: string(b), keys: keys, ok: err == nil}
			}
			list := func(name string, f conduit.ArticleFilter) {
				page, err := svc.Articles(ctx, 0, f)
				add(name, page, conduit.ListKeys(f, page), err)
			}
			list("global", conduit.ArticleFilter{})
			list("global page 2", conduit.ArticleFilter{Limit: 1, Offset: 1})
			for _, tag := range []string{"go", "rust", "web"} {
				list("tag "+tag, conduit.ArticleFilter{Tag: tag})
			}
			for _, n := range names {
				list("author "+n, conduit.ArticleFilter{Author: n})
				list("favorites "+n, conduit.ArticleFilter{FavoritedBy: n})
				prof, err := svc.Profile(ctx, 0, n)
				add("profile "+n, prof, []string{conduit.UserKey(prof.ID)}, err)
			}
			for _, s := range slugs {
				a, err := svc.Article(ctx, 0, s)
				add("article "+s, a, conduit.ArticleKeys(a), err)
				cs, err := svc.Comments(ctx, 0, s, conduit.CommentFilter{})
				add("comments "+s, cs, conduit.CommentsKeys(s, cs.Comments), err)
			}
			tags, err := svc.Tags(ctx)
			add("tags", tags, []string{conduit.KeyTags}, err)
			return out
		}

		step := func(what string, write func() error) {
			t.Helper()
			before := views()
			p.take()
			if err := write(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			purged := p.take()
			after := views()
			for name, b := range before {
				a := after[name]
				if !b.ok || b.content == a.content {
					continue
				}
				if !slices.ContainsFunc(b.keys, func(k string) bool { return slices.Contains(purged, k) }) {
					t.Errorf("%s changed %q but purged %v, none of its keys %v", what, name, purged, b.keys)
				}
			}
		}

		step("alice writes an article", func() error {
			a, err := svc.CreateArticle(ctx, alice.ID, conduit.NewArticle{Title: "Alpha", Description: "d", Body: "b", Tags: []string{"go"}})
			slugs = append(slugs, a.Slug)
			return err
		})
		step("bob writes an article", func() error {
			a, err := svc.CreateArticle(ctx, bob.ID, conduit.NewArticle{Title: "Beta", Description: "d", Body: "b", Tags: []string{"rust"}})
			slugs = append(slugs, a.Slug)
			return err
		})
		step("bob favorites alice's article", func() error { _, err := svc.Favorite(ctx, bob.ID, slugs[0]); return err })
		step("alice comments on bob's article", func() error {
			c, err := svc.AddComment(ctx, alice.ID, slugs[1], "nice")
			commentID = c.ID
			return err
		})
		step("alice retitles and retags her article", func() error {
			title, tags := "Alpha two", []string{"go", "web"}
			a, err := svc.UpdateArticle(ctx, alice.ID, slugs[0], conduit.ArticlePatch{Title: &title, Tags: &tags})
			slugs = append(slugs, a.Slug)
			return err
		})
		step("alice changes her bio", func() error {
			bio := "hello"
			_, err := svc.UpdateUser(ctx, alice.ID, conduit.UserPatch{Bio: &bio})
			return err
		})
		step("alice renames herself", func() error {
			name := "alice2"
			_, err := svc.UpdateUser(ctx, alice.ID, conduit.UserPatch{Username: &name})
			return err
		})
		step("bob unfavorites", func() error { _, err := svc.Unfavorite(ctx, bob.ID, slugs[2]); return err })
		step("alice deletes her comment", func() error { return svc.DeleteComment(ctx, alice.ID, slugs[1], commentID) })
		step("bob follows alice", func() error { _, err := svc.Follow(ctx, bob.ID, "alice2"); return err })
		step("bob favorites his own article", func() error { _, err := svc.Favorite(ctx, bob.ID, slugs[1]); return err })
		step("bob deletes his article", func() error { return svc.DeleteArticle(ctx, bob.ID, slugs[1]) })
	})
}

func TestEdgeKeysAreHeaderWords(t *testing.T) {
	keys := append(conduit.ListKeys(conduit.ArticleFilter{Tag: "a tag with spaces", Author: "Ünïcode", FavoritedBy: "x y"},
		conduit.ArticlePage{Articles: []conduit.Article{{ID: 7, Author: conduit.Profile{ID: 9}}}}),
		conduit.CommentsKey("a slug"), conduit.KeySite, conduit.KeyTags)
	for _, k := range keys {
		for _, c := range k {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Errorf("key %q has %q", k, c)
			}
		}
	}
	if conduit.AuthorKey("Alice") != conduit.AuthorKey("alice") {
		t.Error("author keys differ for names that are the same user")
	}
}
