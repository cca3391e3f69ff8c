package api_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/idempotency"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// badText are byte sequences that are not text: a byte that is never
// UTF-8, an over-long encoding of '/', a UTF-16 surrogate encoded as
// UTF-8, and NUL.
var badText = []string{"\xff", "\xc0\xaf", "\xed\xa0\x80", "\x00"}

// hostileRequest is one request with a bad value in one place.
type hostileRequest struct {
	method, path, body string
	status             int    // what the answer must be
	field              string // the field its errors must name, if any
}

// Every text input of the API — each path parameter of each route, each
// query parameter, each string field of each JSON body — refuses each
// sequence of badText with a 4xx in the spec's error shape, and nothing
// reaches the database: on PostgreSQL these gave 500s, on SQLite they were
// stored. Writes are sent again with an Idempotency-Key, as the idempotency
// layer reads bodies and stores paths.
func TestNonTextRefusedEverywhere(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tokens, err := auth.NewTokens([]auth.Key{testKey}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		svc := conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
		h := api.New(svc, tokens, api.WithIdempotency(db, idempotency.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		a := &testAPI{t: t, url: srv.URL, store: &countingStore{Store: db}, tokens: tokens}

		author, reader := a.register("author"), a.register("reader")
		art := a.createArticle(author, newArticle{Title: "Clean", TagList: []string{"go"}})
		var c struct{ Comment commentDTO }
		a.do("POST", "/api/articles/"+art.Slug+"/comments", author.token, map[string]any{"comment": map[string]string{"body": "hi"}}).want(t, 200, &c)
		cid := strconv.FormatInt(c.Comment.ID, 10)
		ids := []int64{userID(t, tokens, author.token), userID(t, tokens, reader.token)}
		before := storetest.ReadState(t, db, ids, art.Slug)

		var reqs []hostileRequest
		for _, bad := range badText {
			// Path parameters: a real value with the bad bytes inside.
			p := url.PathEscape(bad)
			user := reader.username[:1] + p + reader.username[1:]
			slug := art.Slug[:1] + p + art.Slug[1:]
			for _, r := range []hostileRequest{
				{method: "GET", path: "/api/profiles/" + user},
				{method: "POST", path: "/api/profiles/" + user + "/follow"},
				{method: "DELETE", path: "/api/profiles/" + user + "/follow"},
				{method: "GET", path: "/api/articles/" + slug},
				{method: "PUT", path: "/api/articles/" + slug, body: `{"article":{"title":"New title"}}`},
				{method: "DELETE", path: "/api/articles/" + slug},
				{method: "POST", path: "/api/articles/" + slug + "/favorite"},
				{method: "DELETE", path: "/api/articles/" + slug + "/favorite"},
				{method: "GET", path: "/api/articles/" + slug + "/comments"},
				{method: "POST", path: "/api/articles/" + slug + "/comments", body: `{"comment":{"body":"hello"}}`},
				{method: "DELETE", path: "/api/articles/" + slug + "/comments/" + cid},
				{method: "DELETE", path: "/api/articles/" + art.Slug + "/comments/" + cid + p},
			} {
				r.status = http.StatusNotFound
				reqs = append(reqs, r)
			}
			// Query parameters, and a parameter name.
			q := url.QueryEscape(bad)
			for _, path := range []string{"/api/articles", "/api/articles/feed"} {
				for _, param := range []string{"tag", "author", "favorited", "limit", "offset", "cursor", "other"} {
					reqs = append(reqs, hostileRequest{method: "GET", path: path + "?" + param + "=a" + q + "b", status: 422, field: param})
				}
				reqs = append(reqs, hostileRequest{method: "GET", path: path + "?t" + q + "g=go", status: 422, field: "query"})
			}
			// JSON string fields: the bytes as they are, which no JSON
			// decoder may turn into stored text, and NUL also escaped.
			encodings := []string{bad}
			if bad == "\x00" {
				encodings = append(encodings, `\u0000`)
			}
			for _, enc := range encodings {
				escaped := strings.HasPrefix(enc, `\`)
				for _, f := range []struct {
					method, path, field, tmpl string
				}{
					{"POST", "/api/users", "username", `{"user":{"username":"n%sew","email":"new@example.com","password":"password1"}}`},
					{"POST", "/api/users", "email", `{"user":{"username":"new","email":"n%sew@example.com","password":"password1"}}`},
					{"POST", "/api/users", "password", `{"user":{"username":"new","email":"new@example.com","password":"pass%sword1"}}`},
					{"POST", "/api/users/login", "", `{"user":{"email":"` + author.email + `%s","password":"` + author.password + `"}}`},
					{"POST", "/api/users/login", "", `{"user":{"email":"` + author.email + `","password":"` + author.password + `%s"}}`},
					{"PUT", "/api/user", "username", `{"user":{"username":"n%sew"}}`},
					{"PUT", "/api/user", "email", `{"user":{"email":"n%sew@example.com"}}`},
					{"PUT", "/api/user", "password", `{"user":{"password":"pass%sword1"}}`},
					{"PUT", "/api/user", "bio", `{"user":{"bio":"b%sio"}}`},
					{"PUT", "/api/user", "image", `{"user":{"image":"https://img.example/a%s.png"}}`},
					{"POST", "/api/articles", "title", `{"article":{"title":"t%sitle","description":"d","body":"b","tagList":["t"]}}`},
					{"POST", "/api/articles", "description", `{"article":{"title":"title","description":"d%s","body":"b","tagList":["t"]}}`},
					{"POST", "/api/articles", "body", `{"article":{"title":"title","description":"d","body":"b%s","tagList":["t"]}}`},
					{"POST", "/api/articles", "tagList", `{"article":{"title":"title","description":"d","body":"b","tagList":["t%s"]}}`},
					{"PUT", "/api/articles/" + art.Slug, "title", `{"article":{"title":"t%sitle"}}`},
					{"PUT", "/api/articles/" + art.Slug, "description", `{"article":{"description":"d%s"}}`},
					{"PUT", "/api/articles/" + art.Slug, "body", `{"article":{"body":"b%s"}}`},
					{"PUT", "/api/articles/" + art.Slug, "tagList", `{"article":{"tagList":["t%s"]}}`},
					{"POST", "/api/articles/" + art.Slug + "/comments", "body", `{"comment":{"body":"c%s"}}`},
				} {
					r := hostileRequest{method: f.method, path: f.path, body: fmt.Sprintf(f.tmpl, enc), status: 422, field: "body"}
					switch {
					case escaped && f.path == "/api/users/login":
						r.status, r.field = http.StatusUnauthorized, "" // no such account
					case escaped:
						r.field = f.field
					}
					reqs = append(reqs, r)
				}
			}
		}

		for i, r := range reqs {
			name := fmt.Sprintf("%s %q %q", r.method, r.path, r.body)
			for _, key := range []string{"", "key-" + strconv.Itoa(i)} {
				if key != "" && r.method == "GET" {
					continue
				}
				res := sendRaw(t, srv.URL, r.method, r.path, r.body, author.token, key)
				if res.status != r.status {
					t.Errorf("%s (key %q): status %d, want %d: %s", name, key, res.status, r.status, res.body)
					continue
				}
				var fields []string
				if r.field != "" {
					fields = append(fields, r.field)
				}
				res.wantErrors(t, r.status, fields...)
				if after := storetest.ReadState(t, db, ids, art.Slug); !reflect.DeepEqual(after, before) {
					t.Fatalf("%s (key %q) changed the database:\nbefore %+v\nafter  %+v", name, key, before, after)
				}
			}
		}
		if len(reqs) < 150 {
			t.Fatalf("only %d requests", len(reqs))
		}
	})
}

// sendRaw sends body exactly as given (a JSON encoder would replace
// invalid UTF-8), with an Idempotency-Key when key is not "".
func sendRaw(t *testing.T, base, method, path, body, token, key string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatalf("%s %q: %v", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Token "+token)
	if key != "" {
		req.Header.Set(idempotency.Header, key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %q: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func userID(t *testing.T, tokens *auth.Tokens, token string) int64 {
	t.Helper()
	c, err := tokens.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	return c.UserID
}

// One request with 110,000 distinct tags (just under the body limit) is
// refused with one short message, and nothing is written. The work it
// costs is bounded in conduit's TestNormalizeTagsBoundedWork.
func TestHugeTagListRefused(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("tagger")
		var b strings.Builder
		b.WriteString(`{"article":{"title":"Tags","description":"d","body":"b","tagList":[`)
		for i := range 110_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"t%d"`, i)
		}
		b.WriteString(`]}}`)
		res := sendRaw(t, a.url, "POST", "/api/articles", b.String(), u.token, "")
		errs := res.wantErrors(t, http.StatusUnprocessableEntity, "tagList")
		if len(errs["tagList"]) != 1 || len(res.body) > 200 {
			t.Errorf("answer of %d bytes: %s", len(res.body), res.body)
		}
		if got := a.list("/api/articles", "").ArticlesCount; got != 0 {
			t.Errorf("%d articles after a refused write", got)
		}
	})
}
