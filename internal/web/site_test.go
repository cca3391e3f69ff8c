package web

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
)

// site is the web handler over a real database, for handler tests.
type site struct {
	t       *testing.T
	handler http.Handler
	svc     *conduit.Service
	tokens  *auth.Tokens
}

func newSite(t *testing.T, db conduit.Store, opts Options) *site {
	t.Helper()
	return newSiteOn(t, conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4}), opts)
}

// newSiteOn is the site of svc (a node wired as a test needs it).
func newSiteOn(t *testing.T, svc *conduit.Service, opts Options) *site {
	t.Helper()
	tokens, err := auth.NewTokens([]auth.Key{{ID: "test", Secret: []byte(strings.Repeat("k", 32))}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &site{t: t, handler: New(svc, tokens, logger, opts), svc: svc, tokens: tokens}
}

// browser is one visitor with its own cookie jar (only the session cookie
// matters here). Form posts carry the headers a browser sends for a
// same-origin form.
type browser struct {
	s       *site
	session string
}

func (s *site) browser() *browser { return &browser{s: s} }

// page is a response with its body read.
type response struct {
	*http.Response
	Body string
}

func (b *browser) do(req *http.Request) response {
	b.s.t.Helper()
	if b.session != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: b.session})
	}
	rec := httptest.NewRecorder()
	b.s.handler.ServeHTTP(rec, req)
	res := rec.Result()
	res.Request = req
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			b.session = c.Value
			if c.MaxAge < 0 {
				b.session = ""
			}
		}
	}
	body, _ := io.ReadAll(res.Body)
	return response{Response: res, Body: string(body)}
}

func (b *browser) get(path string) response {
	b.s.t.Helper()
	return b.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (b *browser) post(path string, form url.Values) response {
	b.s.t.Helper()
	return b.do(formRequest(path, form))
}

// formRequest is a same-origin form post, as a browser sends it.
func formRequest(path string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://example.com")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return req
}

// signUp registers a user in this browser and checks the redirect.
func (b *browser) signUp(username string) *browser {
	b.s.t.Helper()
	res := b.post("/register", url.Values{"username": {username}, "email": {username + "@example.com"}, "password": {"password-" + username}})
	wantRedirect(b.s.t, res, "/")
	if b.session == "" {
		b.s.t.Fatalf("sign up %s: no session cookie", username)
	}
	return b
}

// publish writes an article and returns its slug.
func (b *browser) publish(title, tags string) string {
	b.s.t.Helper()
	res := b.post("/editor", url.Values{"title": {title}, "description": {"About " + title}, "body": {"Body of *" + title + "*"}, "tags": {tags}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/article/") {
		b.s.t.Fatalf("publish %q: status %d, Location %q\n%s", title, res.StatusCode, res.Header.Get("Location"), res.Body)
	}
	return strings.TrimPrefix(res.Header.Get("Location"), "/article/")
}

func wantStatus(t *testing.T, res response, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d\n%s", res.Request.Method, res.Request.URL, res.StatusCode, status, res.Body)
	}
}

func wantRedirect(t *testing.T, res response, location string) {
	t.Helper()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != location {
		t.Fatalf("%s %s: status %d Location %q, want 303 to %q\n%s", res.Request.Method, res.Request.URL,
			res.StatusCode, res.Header.Get("Location"), location, res.Body)
	}
}

func wantContains(t *testing.T, res response, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(res.Body, s) {
			t.Errorf("%s %s: body lacks %q\n%s", res.Request.Method, res.Request.URL, s, res.Body)
		}
	}
}

func wantNotContains(t *testing.T, res response, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(res.Body, s) {
			t.Errorf("%s %s: body contains %q", res.Request.Method, res.Request.URL, s)
		}
	}
}

var errorListRE = regexp.MustCompile(`(?s)<ul class="error-messages"[^>]*>(.*?)</ul>`)

// errorMessages returns the items of ul.error-messages.
func errorMessages(body string) []string {
	m := errorListRE.FindStringSubmatch(body)
	if m == nil {
		return nil
	}
	var out []string
	for _, li := range regexp.MustCompile(`<li>(.*?)</li>`).FindAllStringSubmatch(m[1], -1) {
		out = append(out, li[1])
	}
	return out
}

// count returns how many times sub occurs in the body.
func (r response) count(sub string) int { return strings.Count(r.Body, sub) }

// tlsState marks a test request as having come over TLS.
var tlsState = &tls.ConnectionState{HandshakeComplete: true}
