package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/bench"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// emptyServer serves the JSON API over an empty SQLite database, with the
// API at prefix (a peer may serve it at its root).
func emptyServer(t *testing.T, prefix string) *httptest.Server {
	t.Helper()
	tokens, err := auth.NewTokens([]auth.Key{{ID: "k1", Secret: bytes.Repeat([]byte("s"), 32)}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svc := conduit.NewService(storetest.OpenSQLite(t), cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
	var h http.Handler = api.New(svc, tokens)
	if prefix != "/api" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, prefix+"/") || strings.HasPrefix(r.URL.Path, "/api/") {
				http.NotFound(w, r)
				return
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/api" + strings.TrimPrefix(r.URL.Path, prefix)
			r2.URL.RawPath = ""
			inner.ServeHTTP(w, r2)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// The writes mix needs no seeded data: it registers its users through the
// API, and every favorite and follow it sends is a real change (a toggle
// of what its user did before), so none fails and the server's state
// adds up to what was sent.
func TestBenchWritesMix(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the benchmark runs take seconds")
	}
	for _, prefix := range []string{"/api", "/v1"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			srv := emptyServer(t, prefix)
			var log strings.Builder
			rep, err := bench.Run(context.Background(), bench.Config{
				BaseURL: srv.URL, APIPrefix: prefix + "/", Mix: "writes", Connections: 4, Duration: 2 * time.Second, Seed: 3, Log: &log,
			})
			if err != nil {
				t.Fatalf("%v (log: %s)", err, log.String())
			}
			if rep.Total.Errors != 0 {
				t.Fatalf("errors: %v", rep.Total.ErrorKind)
			}
			if rep.SignedIn != 4 {
				t.Errorf("%d users, want one per connection (4)", rep.SignedIn)
			}
			n := map[string]int64{}
			for _, e := range rep.Endpoints {
				if !strings.HasPrefix(e.Name, "write ") {
					t.Errorf("the writes mix sent %q", e.Name)
				}
				n[e.Name] = e.Requests
			}
			for _, want := range []string{"write article", "write comment", "write favorite", "write follow"} {
				if n[want] == 0 {
					t.Errorf("no %q in %v", want, n)
				}
			}

			// Favorites on the server = favorites sent - unfavorites sent;
			// articles = the setup's 3 per user + the creates.
			var page struct {
				Articles []struct {
					FavoritesCount int64 `json:"favoritesCount"`
				} `json:"articles"`
				Count int64 `json:"articlesCount"`
			}
			var favs int64
			for off := 0; ; off += 100 {
				res, err := http.Get(fmt.Sprintf("%s%s/articles?limit=100&offset=%d", srv.URL, prefix, off))
				if err != nil {
					t.Fatal(err)
				}
				page.Articles = nil
				err = json.NewDecoder(res.Body).Decode(&page)
				res.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range page.Articles {
					favs += a.FavoritesCount
				}
				if len(page.Articles) < 100 {
					break
				}
			}
			if want := n["write favorite"] - n["write unfavorite"]; favs != want {
				t.Errorf("%d favorites on the server, want %d (favorites %d - unfavorites %d)", favs, want, n["write favorite"], n["write unfavorite"])
			}
			if want := 3*4 + n["write article"]; page.Count != want {
				t.Errorf("%d articles on the server, want %d", page.Count, want)
			}
			var out strings.Builder
			bench.Print(&out, rep)
			if !strings.Contains(out.String(), "writes mix") {
				t.Errorf("report:\n%s", out.String())
			}
		})
	}
}
