//go:build linux

package hostile

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
)

// maxBody is the node's body limit (httpx.MaxBytesBytes, the limiter's and
// the forms'); mib1 is a value just over it.
const maxBody = 1 << 20

var mib1 = strings.Repeat("a", maxBody+1)

// oversized: bodies over the limit on every route and form that reads one
// (signed in and not, with and without an Idempotency-Key, also chunked),
// every field over its own limit, lists over theirs, and headers, paths and
// query strings near and over the header limit. Every write is refused;
// reads answer without a 5xx.
func oversized(t *testing.T, s *suite) {
	f := &s.f
	m := f.mallory
	var cases caseList
	for _, r := range apiRoutes {
		if r.envelope == "" {
			continue
		}
		path := r.at(f.mallorySlug, m.username, "")
		if r.path == "/api/articles/{slug}/comments" {
			path = r.at(f.slug, "", "")
		}
		for _, field := range r.fields {
			body := r.validBody(field, mib1)
			cases.add(refused,
				req{method: r.method, path: path, body: body, token: m.token},
				req{method: r.method, path: path, body: body, token: m.token, header: map[string]string{"Idempotency-Key": "big-" + r.method + path + field}},
				req{method: r.method, path: path, body: body},
			)
		}
	}
	for _, fm := range dataForms(f) {
		for field := range fm.fields {
			form := cloneValues(fm.fields)
			form.Set(field, mib1)
			cases.add(refused, req{method: "POST", path: fm.path, body: form.Encode(), cookie: m.token})
		}
	}
	// A body without a length: read up to the limit, then refused.
	chunked := "POST /api/articles HTTP/1.1\r\nHost: conduit.test\r\nConnection: close\r\nAuthorization: Token " + m.token +
		"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	for range 3 {
		chunked += fmt.Sprintf("%x\r\n%s\r\n", maxBody/2, strings.Repeat("a", maxBody/2))
	}
	cases.addRaw(refused, chunked+"0\r\n\r\n")

	// Each field one over its limit (docs/security.md, "Limits").
	long := func(n int) string { return strings.Repeat("b", n) }
	tags := func(n int, size int) string {
		var ts []string
		for i := range n {
			ts = append(ts, fmt.Sprintf(`"%s%d"`, long(size), i))
		}
		return "[" + strings.Join(ts, ",") + "]"
	}
	newArticle := func(title, description, body, tagList string) string {
		return fmt.Sprintf(`{"article":{"title":"%s","description":"%s","body":"%s","tagList":%s}}`, title, description, body, tagList)
	}
	cases.add(status(422),
		req{method: "POST", path: "/api/users", body: jsonBody(map[string]any{"user": map[string]string{"username": long(41), "email": "x@example.com", "password": "password-x"}})},
		req{method: "POST", path: "/api/users", body: jsonBody(map[string]any{"user": map[string]string{"username": "xname", "email": long(243) + "@example.com", "password": "password-x"}})},
		req{method: "POST", path: "/api/users", body: jsonBody(map[string]any{"user": map[string]string{"username": "xname", "email": "x@example.com", "password": long(73)}})},
		req{method: "PUT", path: "/api/user", token: m.token, body: jsonBody(map[string]any{"user": map[string]string{"bio": long(2001)}})},
		req{method: "PUT", path: "/api/user", token: m.token, body: jsonBody(map[string]any{"user": map[string]string{"image": "https://img.example/" + long(2030)}})},
		req{method: "POST", path: "/api/articles", token: m.token, body: newArticle(long(201), "d", "b", `["t"]`)},
		req{method: "POST", path: "/api/articles", token: m.token, body: newArticle("T", long(501), "b", `["t"]`)},
		req{method: "POST", path: "/api/articles", token: m.token, body: newArticle("T", "d", long(100_001), `["t"]`)},
		req{method: "POST", path: "/api/articles", token: m.token, body: newArticle("T", "d", "b", tags(11, 1))},
		req{method: "POST", path: "/api/articles", token: m.token, body: newArticle("T", "d", "b", tags(1, 41))},
		req{method: "POST", path: "/api/articles", token: m.token, body: newArticle("T", "d", "b", tags(101, 0))},
		req{method: "POST", path: "/api/articles", token: m.token, body: newArticle("T", "d", "b", tags(110_000, 0))},
		req{method: "PUT", path: "/api/articles/" + f.mallorySlug, token: m.token, body: newArticle("T", "d", "b", tags(101, 0))},
		req{method: "POST", path: "/api/articles/" + f.slug + "/comments", token: m.token, body: `{"comment":{"body":"` + long(5001) + `"}}`},
		// Deep and wide: bounded by the decoder, not by the stack.
		req{method: "POST", path: "/api/articles", token: m.token, body: `{"article":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`},
		req{method: "POST", path: "/api/articles", token: m.token, body: `{"article":{` + strings.Repeat(`"k":1,`, 100_000) + `"body":"b"}}`},
	)
	manyTags := strings.TrimSuffix(strings.Repeat("t ", 110_000), " ")
	for _, fm := range []struct {
		path  string
		field string
		value string
	}{
		{"/register", "username", long(41)},
		{"/settings", "bio", long(2001)},
		{"/editor", "title", long(201)},
		{"/editor", "body", long(100_001)},
		{"/editor", "tags", manyTags},
		{"/editor/" + f.mallorySlug, "tags", manyTags},
		{"/article/" + f.slug + "/comments", "body", long(5001)},
	} {
		for _, df := range dataForms(f) {
			if df.path == fm.path {
				form := cloneValues(df.fields)
				form.Set(fm.field, fm.value)
				cases.add(status(422), req{method: "POST", path: fm.path, body: form.Encode(), cookie: m.token})
			}
		}
	}

	// Headers, paths and queries: http.Server's 64 KiB header limit
	// answers 431 beyond it; within it, a path names nothing and a query
	// finds nothing.
	near, over := strings.Repeat("c", 60<<10), strings.Repeat("c", 100<<10)
	cases.add(status(431),
		req{method: "GET", path: "/api/tags", header: map[string]string{"X-Big": over}},
		req{method: "GET", path: "/api/articles/" + over},
		req{method: "GET", path: "/?tag=" + over},
	)
	cases.add(status(404),
		req{method: "GET", path: "/api/articles/" + near},
		req{method: "GET", path: "/api/profiles/" + near},
		req{method: "GET", path: "/article/" + near},
		req{method: "GET", path: "/profile/" + near},
		req{method: "DELETE", path: "/api/articles/" + near, token: m.token},
	)
	cases.add(status(401), req{method: "GET", path: "/api/articles", header: map[string]string{"Authorization": "Token " + near}})
	cases.add(status(422),
		req{method: "POST", path: "/api/articles", token: m.token, body: `{}`, header: map[string]string{"Idempotency-Key": long(256)}},
		req{method: "POST", path: "/api/articles", token: m.token, body: `{}`, header: map[string]string{"Idempotency-Key": near}},
		req{method: "GET", path: "/api/articles?limit=" + strings.Repeat("9", 30)},
		req{method: "GET", path: "/api/articles?offset=" + strings.Repeat("9", 30)},
	)
	many := strings.TrimSuffix(strings.Repeat("a=1&", 10_000), "&")
	cases.add(anyAnswer,
		req{method: "GET", path: "/api/articles?tag=" + near},
		req{method: "GET", path: "/api/articles?author=" + near + "&favorited=" + near[:1000]},
		req{method: "GET", path: "/api/articles?" + many},
		req{method: "GET", path: "/?" + many},
		req{method: "GET", path: "/?page=" + strings.Repeat("9", 30)},
		req{method: "GET", path: "/api/articles?limit=1000000&offset=1000000000000"},
		req{method: "GET", path: "/", header: map[string]string{"Cookie": sessionCookie + "=" + near}},
		req{method: "GET", path: "/settings", header: map[string]string{"Cookie": strings.Repeat("x=y; ", 10_000)}},
	)
	runCases(t, s.n.client("127.0.0.12"), cases, 4)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// malformedJSON are bodies no route may accept: broken syntax, trailing
// data, the wrong kind of value at the top.
var malformedJSON = []string{
	"", " ", "{", "}", "[", `{"`, "nul", "{}x", "{}{}", "\ufeff{}", "{'user':{}}", `{"user":NaN}`, `{"a":1,}`,
	"[]", "0", "-1", `"user"`, "true", `{"a":"` + "\x01" + `"}`, "{\"a\":\"line\nbreak\"}", "\x00",
	strings.Repeat("[", 10_000), strings.Repeat(`{"a":`, 10_000),
}

// malformed: broken JSON and forms on every route and form, wrong kinds of
// values in every field, odd path parameters on every route, broken
// Authorization headers and cookies everywhere, junk query strings, odd
// methods, broken HTTP framing, cross-site form posts, and the private
// listeners' paths on the public one.
func malformed(t *testing.T, s *suite) {
	f := &s.f
	m := f.mallory
	cid := strconv.FormatInt(f.commentID, 10)
	var cases caseList
	for _, r := range apiRoutes {
		// Bodies: broken, and each field of the wrong kind.
		if r.envelope != "" {
			path := r.at(f.mallorySlug, m.username, "")
			if r.path == "/api/articles/{slug}/comments" {
				path = r.at(f.slug, "", "")
			}
			bodies := append([]string(nil), malformedJSON...)
			for _, wrong := range []string{"[]", `"x"`, "1", "true"} {
				bodies = append(bodies, fmt.Sprintf(`{"%s":%s}`, r.envelope, wrong),
					fmt.Sprintf(`{"%s":{},"%s":%s}`, r.envelope, r.envelope, wrong))
			}
			for _, field := range r.fields {
				wrongs := []string{"1", "{}", "[]", "true", `["x"]`}
				if field == "tagList" { // an empty list is a list
					wrongs = []string{"1", "{}", `"x"`, "true", "[1]", "[[]]", "[{}]"}
				}
				for _, wrong := range wrongs {
					bodies = append(bodies, fmt.Sprintf(`{"%s":{"%s":%s}}`, r.envelope, field, wrong))
				}
			}
			for _, b := range bodies {
				cases.add(refused, req{method: r.method, path: path, body: b, token: m.token})
				if r.method == "POST" && strings.HasPrefix(r.path, "/api/users") {
					cases.add(refused, req{method: r.method, path: path, body: b})
				}
			}
		}
		// Path parameters that name nothing (or something mallory may not
		// touch); no write may succeed.
		want := failed
		if r.method == "GET" {
			want = anyAnswer
		}
		if r.has("slug") {
			for _, v := range oddSegments(f.slug) {
				cases.add(want, req{method: r.method, path: r.at(v, m.username, cid), token: m.token, body: r.validBodyOrEmpty()})
			}
		}
		if r.has("username") {
			for _, v := range oddSegments("admin") {
				cases.add(want, req{method: r.method, path: r.at(f.slug, v, cid), token: m.token})
			}
		}
		if r.has("id") {
			for _, v := range []string{"-1", "0", "abc", "1.5", "1e3", "0x1", "%201", "99999999999999999999",
				"9223372036854775807", "9223372036854775808", cid + "abc", "0" + cid} {
				cases.add(refused, req{method: r.method, path: r.at(f.slug, "", v), token: m.token})
			}
		}
		// Broken credentials are refused on every route, even those
		// anonymous callers may use: the client must sign in again.
		path := r.at(f.slug, "admin", cid)
		for _, h := range badAuthorizations(s) {
			cases.add(status(401), req{method: r.method, path: path, body: r.validBodyOrEmpty(), header: map[string]string{"Authorization": h}})
		}
	}
	// Query strings: junk in every list parameter (the site's too).
	for _, path := range []string{"/api/articles", "/api/articles/feed", "/api/articles/" + f.slug + "/comments", "/api/tags",
		"/", "/profile/admin", "/profile/admin/favorites", "/article/" + f.slug, "/login"} {
		for _, param := range []string{"limit", "offset", "cursor", "tag", "author", "favorited", "page", "feed", "before", "next"} {
			for _, v := range []string{"-1", "0", "abc", "1e3", "99999999999999999999", "%20", "%", "%zz", "a%3Db", "//evil.example",
				"YTEuLTU", "YTEuOTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ", "%2F%2F", "1&" + param + "=2"} {
				target := path + "?" + param + "=" + v
				cases.addRaw(anyAnswer, rawRequest("GET", target, []string{"Authorization: Token " + m.token}, ""))
				if !strings.HasPrefix(path, "/api/") {
					cases.addRaw(anyAnswer, rawRequest("GET", target, []string{"Cookie: " + sessionCookie + "=" + m.token}, ""))
				}
			}
		}
		for _, q := range []string{"?", "?&&&", "?=", "?==", "?;", "?a;b", "?%", "?%zz=1", "?a=1;limit=2", "?limit=1&limit=-1"} {
			cases.addRaw(anyAnswer, rawRequest("GET", path+q, nil, ""))
		}
	}
	// Forms: broken encodings and foreign content types on every data
	// form, signed in; and every button, anonymous, with junk bodies.
	for _, fm := range dataForms(f) {
		for _, b := range []struct{ body, ctype string }{
			{"%zz=1", ""}, {"title=%", ""}, {"a=%G1", ""}, {strings.Repeat("&", 10_000), ""}, {"=", ""}, {"\x00", ""},
			{`{"title":"x","body":"y"}`, ""},
			{fm.fields.Encode(), "application/json"},
			{fm.fields.Encode(), "text/plain"},
			{fm.fields.Encode(), "multipart/form-data; boundary=zz"},
			{"--zz\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n--zz--\r\n", "multipart/form-data; boundary=zz"},
		} {
			cases.add(refused, req{method: "POST", path: fm.path, body: b.body, ctype: b.ctype, cookie: m.token})
		}
		// The same form, valid, from another site: refused as CSRF.
		for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
			cases.add(status(403), req{method: "POST", path: fm.path, body: fm.fields.Encode(), cookie: m.token, header: h})
		}
	}
	for _, p := range actionPaths(f.slug, "admin", cid) {
		for _, b := range []string{"", "%zz", "next=%", "next=//evil.example", strings.Repeat("&", 10_000)} {
			cases.add(notDone, req{method: "POST", path: p, body: b})
		}
		cases.add(status(403), req{method: "POST", path: p, body: "next=/", cookie: s.f.normal.token,
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	}
	// Broken session cookies: an anonymous visitor (the cookie cleared),
	// never an error.
	for _, p := range sitePages(f.slug, "admin", f.mallorySlug) {
		for _, h := range badAuthorizations(s) {
			token := strings.TrimPrefix(strings.TrimPrefix(h, "Token "), "Bearer ")
			cases.add(anyAnswer, req{method: "GET", path: p, header: map[string]string{"Cookie": sessionCookie + "=" + token}})
		}
	}
	// Odd methods, the private listeners' paths, broken framing.
	cases.add(anyAnswer,
		req{method: "PATCH", path: "/api/user", token: m.token, body: `{"user":{"bio":"x"}}`},
		req{method: "PUT", path: "/api/users/login", body: `{}`},
		req{method: "GET", path: "/api/users/login"},
		req{method: "TRACE", path: "/"},
		req{method: "OPTIONS", path: "/api/articles", header: map[string]string{"Access-Control-Request-Method": "DELETE", "Origin": "https://evil.example"}},
		req{method: "DELETE", path: "/"},
		req{method: "PROPFIND", path: "/api/articles"},
	)
	cases.add(status(404), req{method: "GET", path: "/metrics"}, req{method: "GET", path: "/debug/pprof/"},
		req{method: "GET", path: "/api/metrics"})
	for _, raw := range []string{
		"GET / HTTP/1.1\r\n\r\n", // no Host
		"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://evil.example/api/tags HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /api/tags HTTP/1.0\r\n\r\n",
		"GET /api/tags\r\n\r\n",
		"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /api/users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"GET /api/tags HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
		"GET /api/tags HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n",
		"GET /api/tags HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n",
		"\r\n\r\nGET /api/tags HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		cases.addRaw(anyAnswer, raw)
	}
	runCases(t, s.n.client("127.0.0.13"), cases, 4)
}

// validBodyOrEmpty is a valid body for a route that reads one.
func (r route) validBodyOrEmpty() string {
	if r.envelope == "" {
		return ""
	}
	return r.validBody("", "")
}

// oddSegments are path segments near v that name nothing: dot segments,
// encoded slashes, spaces, markup, SQL, look-alikes, directional marks.
func oddSegments(v string) []string {
	return []string{".", "..", "%2e", "%2e%2e", "%2F", v + "%2F", v + "%2Fx", "%20", v + "%20", "%09", "+", "%2B",
		v + "%3B", "%3Cscript%3E", "%27%3B%20DROP%20TABLE%20users%3B--", "%5C", "%25", "%25%32%65", "~", v + "~",
		strings.Repeat("z", 300), strings.ToUpper(v[:1]) + "x" + v[1:], v + ".", "%E2%80%AE" + v, "%EF%BC%A1" + v, "%C3%A9" + v,
		"%D0%B0" + v[1:], v[:1] + "%C4%B0" + v[1:]}
}

// badAuthorizations are Authorization headers that prove nothing: wrong
// schemes, broken, forged, expired, for a user who does not exist, of a
// generation that was never issued.
func badAuthorizations(s *suite) []string {
	tok := s.f.mallory.token
	parts := strings.Split(tok, ".")
	return []string{
		"Token", "Token ", "Bearer", "Basic bWFsbG9yeTpwYXNzd29yZA==", "Token a.b.c", "Token " + tok + "x",
		"Token " + parts[0] + "." + parts[1] + ".",                    // no signature
		"Token eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", // alg none
		"Token " + parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"Token " + s.n.tokens.Issue(1_000_000_000, 0),  // a user who does not exist
		"Token " + s.n.tokens.Issue(s.f.mallory.id, 7), // a generation never issued
		"Token " + s.n.expiredToken(s.f.mallory.id),    // expired
		"Token " + tok[:len(tok)/2], "Token " + strings.Repeat(tok, 3),
	}
}

// expiredToken is a token of the user, signed with the node's key, that
// expired an hour ago.
func (n *node) expiredToken(userID int64) string {
	old, err := auth.NewTokens(n.keys, -time.Hour)
	if err != nil {
		panic(err)
	}
	return old.Issue(userID, 0)
}
