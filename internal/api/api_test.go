package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/media"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// testKey signs the tokens of the API under test.
var testKey = auth.Key{ID: "k1", Secret: bytes.Repeat([]byte("s"), 32)}

// testAPI is the real API handler on a real database, served over HTTP.
type testAPI struct {
	t      *testing.T
	url    string
	store  *countingStore
	tokens *auth.Tokens
}

// eachAPI runs f against a fresh API once per database backend.
func eachAPI(t *testing.T, f func(t *testing.T, a *testAPI)) {
	t.Helper()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f(t, newAPI(t, db))
	})
}

func newAPI(t *testing.T, db *store.DB) *testAPI {
	t.Helper()
	return newAPIWithCache(t, db, cache.NewMemory(1000))
}

// noCache always misses, so every read reaches the store.
type noCache struct{}

func (noCache) Get(context.Context, string) ([]byte, bool)         { return nil, false }
func (noCache) Set(context.Context, string, []byte, time.Duration) {}
func (noCache) Delete(context.Context, ...string)                  {}

func newAPIWithCache(t *testing.T, db *store.DB, c conduit.Cache) *testAPI {
	t.Helper()
	tokens, err := auth.NewTokens([]auth.Key{testKey}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: db}
	svc := conduit.NewService(cs, c, auth.Bcrypt{Cost: 4})
	// As the server mounts them: the API and the images it links to.
	dir, err := media.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	images := media.New(dir, media.Options{})
	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(svc, tokens, api.WithMedia(images)))
	mux.Handle("/media/", images)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testAPI{t: t, url: srv.URL, store: cs, tokens: tokens}
}

// response is what a request got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body is sent as is when it is a string, and as JSON
// otherwise (nil: no body). token "" sends no Authorization header.
func (a *testAPI) do(method, path, token string, body any) response {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, a.url+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
		if strings.HasSuffix(path, "/image") {
			req.Header.Set("Content-Type", "image/png") // the picture itself (avatar uploads)
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// want checks the status, and for JSON answers the Content-Type and that
// the body decodes into v (if v is not nil).
func (r response) want(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	if status == http.StatusNoContent {
		if len(r.body) != 0 {
			t.Errorf("204 with a body: %s", r.body)
		}
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want application/json; charset=utf-8", ct)
	}
	if v != nil {
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// wantErrors checks a spec-shaped error: the status and, for each field
// given, at least one message.
func (r response) wantErrors(t *testing.T, status int, fields ...string) map[string][]string {
	t.Helper()
	var body struct {
		Errors map[string][]string `json:"errors"`
	}
	r.want(t, status, &body)
	if len(body.Errors) == 0 {
		t.Fatalf("no errors in %s", r.body)
	}
	for _, f := range fields {
		if len(body.Errors[f]) == 0 || body.Errors[f][0] == "" {
			t.Errorf("errors[%q] missing in %s", f, r.body)
		}
	}
	return body.Errors
}

// Wire shapes, decoded strictly so that an extra or misspelt field fails.
type userDTO struct {
	Email, Token, Username, Bio, Image string
}

type profileDTO struct {
	Username  string `json:"username"`
	Bio       string `json:"bio"`
	Image     string `json:"image"`
	Following bool   `json:"following"`
}

type articleDTO struct {
	Slug           string     `json:"slug"`
	Title          string     `json:"title"`
	Description    string     `json:"description"`
	Body           *string    `json:"body"`
	TagList        []string   `json:"tagList"`
	CreatedAt      string     `json:"createdAt"`
	UpdatedAt      string     `json:"updatedAt"`
	Favorited      bool       `json:"favorited"`
	FavoritesCount int        `json:"favoritesCount"`
	Author         profileDTO `json:"author"`
}

type articlesDTO struct {
	Articles      []articleDTO `json:"articles"`
	ArticlesCount int          `json:"articlesCount"`
	NextCursor    string       `json:"nextCursor"` // extension: keyset paging
}

type commentDTO struct {
	ID        int64      `json:"id"`
	CreatedAt string     `json:"createdAt"`
	UpdatedAt string     `json:"updatedAt"`
	Body      string     `json:"body"`
	Author    profileDTO `json:"author"`
}

// isoMillis is ISO 8601 in UTC with milliseconds, as the spec's examples.
var isoMillis = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

func checkTime(t *testing.T, name, s string) {
	t.Helper()
	if !isoMillis.MatchString(s) {
		t.Errorf("%s = %q, want ISO 8601 with milliseconds", name, s)
		return
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || time.Since(ts) > time.Hour || time.Until(ts) > time.Minute {
		t.Errorf("%s = %q is not a time of this test run (%v)", name, s, err)
	}
}

// user is a registered test user.
type user struct {
	username, email, password, token string
}

var userSeq atomic.Int64

// register signs up a new user with a unique name based on name.
func (a *testAPI) register(name string) user {
	a.t.Helper()
	n := userSeq.Add(1)
	u := user{username: fmt.Sprintf("%s%d", name, n), email: fmt.Sprintf("%s%d@example.com", name, n), password: "password-" + name}
	var got struct{ User userDTO }
	a.do("POST", "/api/users", "", map[string]any{"user": map[string]string{
		"username": u.username, "email": u.email, "password": u.password,
	}}).want(a.t, http.StatusCreated, &got)
	u.token = got.User.Token
	return u
}

type newArticle struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Body        string   `json:"body"`
	TagList     []string `json:"tagList,omitempty"`
}

// createArticle writes an article as u and returns it.
func (a *testAPI) createArticle(u user, in newArticle) articleDTO {
	a.t.Helper()
	if in.Description == "" {
		in.Description = "about " + in.Title
	}
	if in.Body == "" {
		in.Body = "The body of " + in.Title
	}
	var got struct{ Article articleDTO }
	a.do("POST", "/api/articles", u.token, map[string]any{"article": in}).want(a.t, http.StatusCreated, &got)
	return got.Article
}

func (a *testAPI) article(slug, token string) articleDTO {
	a.t.Helper()
	var got struct{ Article articleDTO }
	a.do("GET", "/api/articles/"+slug, token, nil).want(a.t, http.StatusOK, &got)
	return got.Article
}

func (a *testAPI) profile(username, token string) profileDTO {
	a.t.Helper()
	var got struct{ Profile profileDTO }
	a.do("GET", "/api/profiles/"+username, token, nil).want(a.t, http.StatusOK, &got)
	return got.Profile
}

func (a *testAPI) list(path, token string) articlesDTO {
	a.t.Helper()
	var got articlesDTO
	a.do("GET", path, token, nil).want(a.t, http.StatusOK, &got)
	return got
}

// Every protected endpoint answers 401 without a token, and with any token
// that is not valid: malformed, expired, forged, tampered with, signed with
// an unknown key id, or "alg: none".
func TestAuthRequired(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("auth")
		art := a.createArticle(u, newArticle{Title: "Guarded"})

		protected := []struct{ method, path string }{
			{"GET", "/api/user"},
			{"PUT", "/api/user"},
			{"POST", "/api/profiles/" + u.username + "/follow"},
			{"DELETE", "/api/profiles/" + u.username + "/follow"},
			{"GET", "/api/articles/feed"},
			{"POST", "/api/articles"},
			{"PUT", "/api/articles/" + art.Slug},
			{"DELETE", "/api/articles/" + art.Slug},
			{"POST", "/api/articles/" + art.Slug + "/favorite"},
			{"DELETE", "/api/articles/" + art.Slug + "/favorite"},
			{"POST", "/api/articles/" + art.Slug + "/comments"},
			{"DELETE", "/api/articles/" + art.Slug + "/comments/1"},
		}
		for _, p := range protected {
			t.Run("no token "+p.method+" "+p.path, func(t *testing.T) {
				r := a.do(p.method, p.path, "", `{}`)
				r.wantErrors(t, http.StatusUnauthorized)
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			})
		}

		bad := map[string]string{
			"garbage":     "not-a-token",
			"two parts":   "a.b",
			"expired":     issueWith(t, []auth.Key{testKey}, -time.Minute),
			"forged":      issueWith(t, []auth.Key{{ID: testKey.ID, Secret: bytes.Repeat([]byte("x"), 32)}}, time.Hour),
			"unknown kid": issueWith(t, []auth.Key{{ID: "other", Secret: testKey.Secret}}, time.Hour),
			"tampered":    tamper(t, u.token),
			"alg none":    algNone(t, u.token),
		}
		// Anonymous endpoints refuse bad tokens too, so a client learns
		// that its token has expired.
		paths := []struct{ method, path string }{{"GET", "/api/user"}, {"GET", "/api/articles"}, {"GET", "/api/tags"}}
		for name, tok := range bad {
			for _, p := range paths {
				t.Run(name+" "+p.path, func(t *testing.T) {
					a.do(p.method, p.path, tok, nil).wantErrors(t, http.StatusUnauthorized)
				})
			}
		}

		t.Run("schemes", func(t *testing.T) {
			for header, status := range map[string]int{
				"Token " + u.token:  http.StatusOK,
				"Bearer " + u.token: http.StatusOK,
				"Basic " + u.token:  http.StatusUnauthorized,
				"Token":             http.StatusUnauthorized,
				u.token:             http.StatusUnauthorized,
			} {
				req, _ := http.NewRequest("GET", a.url+"/api/user", nil)
				req.Header.Set("Authorization", header)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != status {
					t.Errorf("Authorization %.12q…: status %d, want %d", header, res.StatusCode, status)
				}
			}
		})

		t.Run("token of a key listed second still works", func(t *testing.T) {
			old := issueWith(t, []auth.Key{{ID: "old", Secret: bytes.Repeat([]byte("o"), 32)}}, time.Hour)
			rotated, err := auth.NewTokens([]auth.Key{testKey, {ID: "old", Secret: bytes.Repeat([]byte("o"), 32)}}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rotated.Verify(old); err != nil {
				t.Errorf("rotated key set refuses a token of its second key: %v", err)
			}
		})
	})
}

// issueWith returns a token for user 1 signed by a Tokens with keys and ttl.
func issueWith(t *testing.T, keys []auth.Key, ttl time.Duration) string {
	t.Helper()
	return issueFor(t, keys, ttl, 1)
}

// issueFor returns a token for userID signed by a Tokens with keys and ttl.
func issueFor(t *testing.T, keys []auth.Key, ttl time.Duration, userID int64) string {
	t.Helper()
	tok, err := auth.NewTokens(keys, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Issue(userID, 0)
}

// tamper changes the subject of a token and keeps its signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["sub"] = "2"
	payload, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// algNone rewrites a token as an unsigned one.
func algNone(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`))
	return h + "." + parts[1] + "."
}

// Bad bodies get a 422 in the spec's shape, never a 5xx.
func TestBadBodies(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("bodies")
		art := a.createArticle(u, newArticle{Title: "Target"})
		huge := `{"article":{"title":"t","description":"d","body":"` + strings.Repeat("x", httpx.MaxBodyBytes) + `"}}`
		endpoints := []struct{ method, path string }{
			{"POST", "/api/users"},
			{"POST", "/api/users/login"},
			{"PUT", "/api/user"},
			{"POST", "/api/articles"},
			{"PUT", "/api/articles/" + art.Slug},
			{"POST", "/api/articles/" + art.Slug + "/comments"},
		}
		bodies := []struct {
			name, body string
			field      string
		}{
			{"empty", ``, "body"},
			{"malformed", `{"user":`, "body"},
			{"not an object", `[1,2]`, "body"},
			{"string", `"hello"`, "body"},
			{"trailing data", `{} {}`, "body"},
			{"oversized", huge, ""},
		}
		for _, e := range endpoints {
			for _, b := range bodies {
				t.Run(e.method+" "+e.path+" "+b.name, func(t *testing.T) {
					r := a.do(e.method, e.path, u.token, b.body)
					if b.name == "oversized" {
						if r.status != http.StatusRequestEntityTooLarge && r.status != http.StatusUnprocessableEntity {
							t.Fatalf("oversized body: status %d, want 413 or 422", r.status)
						}
						r.wantErrors(t, r.status)
						return
					}
					r.wantErrors(t, http.StatusUnprocessableEntity, b.field)
				})
			}
		}

		wrongTypes := []struct {
			method, path, body, field, msg string
		}{
			{"POST", "/api/users", `{"user":{"username":1,"email":"a@b.c","password":"12345678"}}`, "username", "must be a string"},
			{"POST", "/api/users", `{"user":"alice"}`, "user", "must be a JSON object"},
			{"POST", "/api/users/login", `{"user":{"email":true,"password":"x"}}`, "email", "must be a string"},
			{"PUT", "/api/user", `{"user":{"bio":["a"]}}`, "bio", "must be a string"},
			{"POST", "/api/articles", `{"article":{"title":"t","description":"d","body":"b","tagList":"a,b"}}`, "tagList", "must be a list"},
			{"POST", "/api/articles", `{"article":{"title":"t","description":"d","body":"b","tagList":[1]}}`, "tagList", "must be a string"},
			{"POST", "/api/articles", `{"article":[]}`, "article", "must be a JSON object"},
			{"PUT", "/api/articles/" + art.Slug, `{"article":{"title":{}}}`, "title", "must be a string"},
			{"POST", "/api/articles/" + art.Slug + "/comments", `{"comment":{"body":42}}`, "body", "must be a string"},
		}
		for _, w := range wrongTypes {
			t.Run("wrong type "+w.method+" "+w.path+" "+w.field, func(t *testing.T) {
				errs := a.do(w.method, w.path, u.token, w.body).wantErrors(t, http.StatusUnprocessableEntity, w.field)
				if got := errs[w.field]; len(got) == 0 || got[0] != w.msg {
					t.Errorf("errors[%q] = %q, want %q", w.field, got, w.msg)
				}
			})
		}

		// None of the bad requests wrote anything.
		got := a.list("/api/articles", "")
		if got.ArticlesCount != 1 {
			t.Errorf("articlesCount = %d after rejected writes, want 1", got.ArticlesCount)
		}
	})
}

func TestCORS(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		for _, path := range []string{"/api/users", "/api/articles", "/api/articles/some-slug/comments", "/api/user"} {
			t.Run("preflight "+path, func(t *testing.T) {
				req, _ := http.NewRequest("OPTIONS", a.url+path, nil)
				req.Header.Set("Origin", "https://app.example")
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusOK {
					t.Fatalf("preflight status %d", res.StatusCode)
				}
				if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
					t.Errorf("Allow-Origin = %q", got)
				}
				for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
					if !strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), m) {
						t.Errorf("Allow-Methods %q lacks %s", res.Header.Get("Access-Control-Allow-Methods"), m)
					}
				}
				allowed := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers"))
				for _, h := range []string{"authorization", "content-type"} {
					if !strings.Contains(allowed, h) {
						t.Errorf("Allow-Headers %q lacks %s", allowed, h)
					}
				}
			})
		}
		// Every answer, errors included, carries Allow-Origin.
		for _, c := range []struct {
			method, path string
			status       int
		}{
			{"GET", "/api/tags", 200},
			{"GET", "/api/articles", 200},
			{"GET", "/api/user", 401},
			{"GET", "/api/articles/nope", 404},
			{"POST", "/api/users", 422},
		} {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				r := a.do(c.method, c.path, "", nil)
				if r.status != c.status {
					t.Fatalf("status %d, want %d", r.status, c.status)
				}
				if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
					t.Errorf("Allow-Origin = %q", got)
				}
			})
		}
	})
}

// Unknown paths and methods under /api/ are JSON 404s or 405s, never HTML.
func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		a.do("GET", "/api/nothing-here", "", nil).wantErrors(t, http.StatusNotFound)
		a.do("GET", "/api/profiles/nobody", "", nil).wantErrors(t, http.StatusNotFound)
		r := a.do("PATCH", "/api/articles", "", nil)
		if r.status != http.StatusMethodNotAllowed && r.status != http.StatusNotFound {
			t.Errorf("PATCH /api/articles: status %d, want 405 or 404", r.status)
		}
	})
}
