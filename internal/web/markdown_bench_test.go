package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// BenchmarkMarkdown measures rendering a body (Markdown to sanitized HTML)
// with the guards ("bounded") and as it was before them ("unbounded":
// goldmark with GFM, then the same sanitizer), for ordinary articles of
// 5 KB and 100 KB and the 100 KB pathological bodies. Unbounded renders
// take seconds each; two are skipped: nested quotes (24 s) and the padded
// table (gigabytes of memory). Run it once per case:
//
//	go test ./internal/web -run '^$' -bench Markdown -benchtime 1x
func BenchmarkMarkdown(b *testing.B) {
	inputs := pathologicalMarkdown(100_000)
	inputs["ordinary 5 KB"] = normalMarkdown(5_000)
	inputs["ordinary 100 KB"] = normalMarkdown(100_000)
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	sort.Strings(names)

	m := newMarkdown()
	unbounded := goldmark.New(goldmark.WithExtensions(extension.GFM))
	policy := sanitizer()
	for _, name := range names {
		src := inputs[name]
		b.Run("bounded/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				m.Render(src)
			}
		})
		b.Run("unbounded/"+name, func(b *testing.B) {
			if name == "nested quotes" || name == "table padded rows" {
				b.Skip("takes too long or too much memory without the guards")
			}
			b.SetBytes(int64(len(src)))
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				if err := unbounded.Convert([]byte(src), &out); err != nil {
					b.Fatal(err)
				}
				policy.SanitizeBytes(out.Bytes())
			}
		})
	}
}

// BenchmarkArticlePage measures an anonymous view of an article page on
// SQLite, once its rendering is stored (the first view renders it): the
// cost a reader adds. Before renderings were stored, each view also paid
// a whole rendering (BenchmarkMarkdown).
func BenchmarkArticlePage(b *testing.B) {
	for _, c := range []struct{ name, body string }{
		{"ordinary 5 KB", normalMarkdown(5_000)},
		{"emphasis mix 100 KB", pathologicalMarkdown(100_000)["emphasis mix"]},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := storetest.OpenSQLite(b)
			svc := conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
			u, err := svc.Register(context.Background(), conduit.NewUser{Username: "writer", Email: "w@example.com", Password: "password-w"})
			if err != nil {
				b.Fatal(err)
			}
			a, err := svc.CreateArticle(context.Background(), u.ID, conduit.NewArticle{Title: "Bench", Description: "d", Body: c.body})
			if err != nil {
				b.Fatal(err)
			}
			tokens, err := auth.NewTokens([]auth.Key{{ID: "test", Secret: []byte(strings.Repeat("k", 32))}}, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			h := New(svc, tokens, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
			view := func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/article/"+a.Slug, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
			view() // renders and stores
			for b.Loop() {
				view()
			}
		})
	}
}
