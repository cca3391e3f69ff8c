// Package feedtest checks Conduit's Atom feeds with a feed parser written
// by others (github.com/mmcdole/gofeed), as feed readers would read them.
// It is a module of its own so that the parser stays out of Conduit's
// go.mod; run it with `cd internal/web/feedtest && go test ./...`.
package feedtest

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed/atom"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/web"
)

func TestFeedsParse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		tokens, err := auth.NewTokens([]auth.Key{{ID: "t", Secret: []byte(strings.Repeat("k", 32))}}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		svc := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		srv := httptest.NewServer(web.New(svc, tokens, slog.New(slog.NewTextHandler(io.Discard, nil)), web.Options{}))
		t.Cleanup(srv.Close)

		u, err := svc.Register(ctx, conduit.NewUser{Username: "alice", Email: "alice@example.com", Password: "password-alice"})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []conduit.NewArticle{
			{Title: "Fish & <chips>", Description: "a \"quoted\" dish", Body: "# Heading\n\n*Crisp* <script>alert(1)</script>", Tags: []string{"food"}},
			{Title: "Second", Description: "d", Body: "b", Tags: []string{"food", "more"}},
		} {
			if _, err := svc.CreateArticle(ctx, u.ID, in); err != nil {
				t.Fatal(err)
			}
		}

		for _, path := range []string{"/feed.atom", "/feed.atom?tag=" + url.QueryEscape("food"), "/profile/alice/feed.atom"} {
			res, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := (&atom.Parser{}).Parse(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if f.ID == "" || f.Title == "" || f.UpdatedParsed == nil || len(f.Entries) != 2 {
				t.Fatalf("%s: %+v", path, f)
			}
			first := f.Entries[0]
			if first.Title != "Second" || first.UpdatedParsed == nil || first.PublishedParsed == nil || len(first.Authors) != 1 ||
				first.Authors[0].Name != "alice" || len(first.Categories) != 2 || len(first.Links) != 1 ||
				!strings.HasPrefix(first.Links[0].Href, srv.URL+"/article/") {
				t.Errorf("%s: first entry %+v", path, first)
			}
			second := f.Entries[1]
			if second.Title != "Fish & <chips>" || second.Summary != `a "quoted" dish` ||
				!strings.Contains(second.Content.Value, "<em>Crisp</em>") || strings.Contains(second.Content.Value, "<script>") {
				t.Errorf("%s: second entry title %q summary %q content %q", path, second.Title, second.Summary, second.Content.Value)
			}
			if first.ID == second.ID || !strings.HasPrefix(first.ID, "tag:") {
				t.Errorf("%s: entry ids %q %q", path, first.ID, second.ID)
			}
		}
	})
}
