package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/media"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestEveryPageHasSecurityHeaders(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("alice")
		slug := b.publish("Headers", "h")
		paths := []string{"/", "/?tag=h", "/?feed=following", "/login", "/register", "/settings", "/editor", "/editor/" + slug,
			"/article/" + slug, "/profile/alice", "/profile/alice/favorites", "/article/missing", "/nowhere"}
		for _, p := range paths {
			for _, who := range []*browser{b, s.browser()} {
				res := who.get(p)
				hd := res.Header
				csp := hd.Get("Content-Security-Policy")
				if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") ||
					!strings.Contains(csp, "default-src 'none'") {
					t.Errorf("%s: CSP %q", p, csp)
				}
				if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") == "" || hd.Get("X-Frame-Options") != "DENY" {
					t.Errorf("%s: headers %v", p, hd)
				}
				if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusNotFound {
					// Only what every anonymous visitor gets alike may be
					// kept by shared caches (docs/stage6.md).
					cc := hd.Get("Cache-Control")
					if (who == b || res.StatusCode != http.StatusOK) && !strings.Contains(cc, "private") {
						t.Errorf("%s: Cache-Control %q lets shared caches keep a personal page or an error", p, cc)
					}
					if who != b && res.StatusCode == http.StatusOK && !strings.Contains(cc, "s-maxage=") {
						t.Errorf("%s: anonymous page with Cache-Control %q", p, cc)
					}
					checkAccessible(t, p, res.Body)
				}
			}
		}
	})
}

var (
	headingRE = regexp.MustCompile(`<h([1-6])[\s>]`)
	inputRE   = regexp.MustCompile(`<(?:input|textarea)[^>]*>`)
	idRE      = regexp.MustCompile(`\bid="([^"]+)"`)
	offsiteRE = regexp.MustCompile(`(?:src|href)="(?:https?:)?//`)
)

// checkAccessible checks the basics: language, viewport, one h1 first and
// no skipped heading levels, a label for every visible input, and nothing
// loaded from another host.
func checkAccessible(t *testing.T, path, body string) {
	t.Helper()
	if !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, `<meta name="viewport"`) {
		t.Errorf("%s: no lang or viewport", path)
	}
	prev := 0
	for i, m := range headingRE.FindAllStringSubmatch(body, -1) {
		lvl := int(m[1][0] - '0')
		if (i == 0 && lvl != 1) || lvl > prev+1 {
			t.Errorf("%s: heading h%d after h%d", path, lvl, prev)
		}
		prev = lvl
	}
	for _, in := range inputRE.FindAllString(body, -1) {
		if strings.Contains(in, `type="hidden"`) {
			continue
		}
		id := idRE.FindStringSubmatch(in)
		if id == nil || !regexp.MustCompile(`<label[^>]* for="`+regexp.QuoteMeta(id[1])+`"`).MatchString(body) {
			t.Errorf("%s: input without a label: %s", path, in)
		}
	}
	if m := offsiteRE.FindString(body); m != "" {
		t.Errorf("%s: loads from another host: %s", path, m)
	}
}

func TestCrossSiteFormPostsAreRefused(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("victim")
		slug := b.publish("Target", "")
		tests := []struct {
			name    string
			headers map[string]string
			want    int
		}{
			{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
			{"same-site other subdomain", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
			{"foreign origin, old browser", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
			{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}, http.StatusSeeOther},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodPost, "/article/"+slug+"/favorite", strings.NewReader(""))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range tt.headers {
					req.Header.Set(k, v)
				}
				res := b.do(req)
				wantStatus(t, res, tt.want)
				if tt.want == http.StatusForbidden {
					wantContains(t, res, "sent from another site")
				}
			})
		}
		a := mustArticles(t, s)
		if a[0].FavoritesCount != 1 {
			t.Errorf("favorites %d, want 1 (only the same-origin post)", a[0].FavoritesCount)
		}
		// A cross-site sign-in (login CSRF) is refused too.
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("email=victim%40example.com&password=password-victim"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		wantStatus(t, s.browser().do(req), http.StatusForbidden)
	})
}

var assetRE = regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`)

func TestStaticAssetsAreFingerprintedAndImmutable(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser()
		home := b.get("/")
		urls := assetRE.FindAllStringSubmatch(home.Body, -1)
		if len(urls) < 4 { // css, icon, js, default avatar... at least the head's three
			if len(urls) < 3 {
				t.Fatalf("assets on the home page: %v", urls)
			}
		}
		want := map[string]string{".css": "text/css", ".js": "javascript", ".svg": "image/svg+xml"}
		for _, m := range urls {
			u := m[1]
			if !regexp.MustCompile(`^/static/[a-z]+\.[0-9a-f]{12}\.(css|js|svg)$`).MatchString(u) {
				t.Errorf("asset URL %q is not fingerprinted", u)
			}
			res := b.get(u)
			wantStatus(t, res, http.StatusOK)
			if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
				t.Errorf("%s: Cache-Control %q", u, cc)
			}
			ext := u[strings.LastIndexByte(u, '.'):]
			if !strings.Contains(res.Header.Get("Content-Type"), want[ext]) {
				t.Errorf("%s: Content-Type %q", u, res.Header.Get("Content-Type"))
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: no nosniff", u)
			}
			req := httptest.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("If-None-Match", res.Header.Get("ETag"))
			wantStatus(t, b.do(req), http.StatusNotModified)
			// A different hash is not this file.
			stale := regexp.MustCompile(`\.[0-9a-f]{12}\.`).ReplaceAllString(u, ".000000000000.")
			wantStatus(t, b.get(stale), http.StatusNotFound)
		}
		css := b.get(s.handlerAssets().URL("app.css"))
		if !strings.Contains(css.Body, "#2f7a2f") || !strings.Contains(css.Body, ".article-preview") || !strings.Contains(css.Body, "@media") {
			t.Error("stylesheet lacks the brand colour, previews or responsive rules")
		}
		if strings.Contains(css.Body, "@import") || strings.Contains(css.Body, "url(http") {
			t.Error("stylesheet loads from another host")
		}
	})
}

// handlerAssets rebuilds the asset table; URLs depend only on content, so
// they equal the handler's.
func (s *site) handlerAssets() *assets {
	a, err := newAssets("")
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

func TestServerErrorsHideTheirCause(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("alice")
		db.Close() // every query now fails inside the store
		for _, p := range []string{"/", "/article/x", "/profile/alice", "/settings"} {
			res := b.get(p)
			wantStatus(t, res, http.StatusInternalServerError)
			wantContains(t, res, "Something went wrong on our side.")
			wantNotContains(t, res, "closed", "sql")
		}
	})
}

func TestDeclaredPagesMatchTemplates(t *testing.T) {
	t.Parallel()
	a, err := newAssets("")
	if err != nil {
		t.Fatal(err)
	}
	v, err := newViews(a, media.New(nil, media.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.pages) != len(declaredPages()) {
		t.Errorf("%d page templates for %d declared pages", len(v.pages), len(declaredPages()))
	}
	for _, p := range declaredPages() {
		if v.pages[p.template()] == nil {
			t.Errorf("page %s has no template", p.template())
		}
	}
}
