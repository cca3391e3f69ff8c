//go:build linux

package hostile

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// notTextBytes are byte sequences that are not text: a byte that is never
// UTF-8, an over-long '/', a UTF-16 surrogate encoded as UTF-8, and NUL.
var notTextBytes = []string{"\xff", "\xc0\xaf", "\xed\xa0\x80", "\x00"}

// notText puts each of notTextBytes in every position a client controls:
// each path parameter of each route of both surfaces (percent-encoded and,
// where HTTP allows, raw), each query parameter and a parameter's name,
// each string field of each JSON body (raw, and NUL also as \u0000), each
// field of each form, and the headers the node reads. None may be stored
// or give a 5xx (they gave 500s on PostgreSQL and were stored on SQLite).
func notText(t *testing.T, s *suite) {
	f := &s.f
	m := f.mallory
	cid := strconv.FormatInt(f.commentID, 10)
	var cases caseList
	auth := []string{"Authorization: Token " + m.token}
	session := []string{"Cookie: " + sessionCookie + "=" + m.token}
	for _, bad := range notTextBytes {
		enc := url.PathEscape(bad)
		for _, r := range apiRoutes {
			for _, param := range []string{"slug", "username", "id"} {
				if !r.has(param) {
					continue
				}
				vals := map[string]string{"slug": f.slug, "username": "admin", "id": cid}
				v := vals[param]
				vals[param] = v[:1] + enc + v[1:]
				path := r.at(vals["slug"], vals["username"], vals["id"])
				cases.add(status(404), req{method: r.method, path: path, token: m.token, body: r.validBodyOrEmpty()})
				if bad != "\x00" { // NUL cannot travel raw in a request line
					rawPath := strings.Replace(path, enc, bad, 1)
					cases.addRaw(refused, rawRequest(r.method, rawPath, auth, r.validBodyOrEmpty()))
				}
			}
			for _, field := range r.fields {
				encodings := []string{bad}
				if bad == "\x00" {
					encodings = append(encodings, `\u0000`)
				}
				path := r.at(f.mallorySlug, "", "")
				if r.path == "/api/articles/{slug}/comments" {
					path = r.at(f.slug, "", "")
				}
				for _, e := range encodings {
					body := r.validBody(field, "a"+e+"b")
					cases.add(refused, req{method: r.method, path: path, body: body, token: m.token},
						req{method: r.method, path: path, body: body, token: m.token,
							header: map[string]string{"Idempotency-Key": fmt.Sprintf("nt-%q-%s-%s", e, r.method+path, field)}})
				}
			}
		}
		q := url.QueryEscape(bad)
		for _, path := range []string{"/api/articles", "/api/articles/feed", "/api/articles/" + f.slug + "/comments", "/api/tags"} {
			for _, param := range []string{"tag", "author", "favorited", "limit", "offset", "cursor", "other"} {
				cases.add(status(422), req{method: "GET", path: path + "?" + param + "=a" + q + "b", token: m.token})
			}
			cases.add(status(422), req{method: "GET", path: path + "?t" + q + "g=go", token: m.token})
		}
		for _, path := range sitePages(f.slug, "admin", f.mallorySlug) {
			for _, param := range []string{"tag", "feed", "page", "next", "before", "other"} {
				cases.add(status(422), req{method: "GET", path: path + "?" + param + "=a" + q + "b", cookie: m.token})
			}
		}
		for _, path := range []string{"/editor/", "/article/", "/profile/"} {
			cases.add(status(404), req{method: "GET", path: path + "a" + enc + "b", cookie: m.token})
		}
		for _, p := range actionPaths(f.slug[:1]+enc+f.slug[1:], "a"+enc+"dmin", cid) {
			if strings.Contains(p, enc) {
				cases.add(status(404), req{method: "POST", path: p, body: "next=/", cookie: m.token})
			}
		}
		cases.add(status(404), req{method: "POST", path: "/article/" + f.slug + "/comments/" + cid + enc + "/delete", cookie: m.token})
		for _, fm := range dataForms(f) {
			for field := range fm.fields {
				form := cloneValues(fm.fields)
				v := form.Get(field)
				form.Set(field, v[:1]+bad+v[1:])
				cases.add(refused, req{method: "POST", path: fm.path, body: form.Encode(), cookie: m.token})
			}
		}
		// Where to go after signing in is not stored; a bad one is
		// replaced by a safe one.
		cases.add(anyAnswer, req{method: "POST", path: "/article/" + f.slug + "/unfavorite", body: "next=/a" + q, cookie: m.token})

		// Headers the node reads. NUL is refused by HTTP itself (400);
		// the others are bytes HTTP allows in a header value.
		for _, h := range []struct {
			header string
			want   answer
		}{
			{"Authorization: Token " + m.token[:10] + bad + m.token[10:], status(401)},
			{"Authorization: Token" + bad, status(401)},
			{"Idempotency-Key: k" + bad + "\r\n" + auth[0], status(422)},
			{"Content-Type: application/json" + bad + "\r\n" + auth[0], status(415)},
			{"Content-Type: application/" + bad + "json\r\n" + auth[0], status(415)},
		} {
			want := h.want
			if bad == "\x00" {
				want = status(400)
			}
			cases.addRaw(want, rawRequest("POST", "/api/articles", []string{h.header},
				`{"article":{"title":"T","description":"d","body":"b"}}`))
		}
		for _, h := range []string{
			"Cookie: " + sessionCookie + "=" + m.token[:10] + bad + m.token[10:],
			"Cookie: " + sessionCookie + bad + "=" + m.token,
			"X-Forwarded-For: 10.0.0." + bad,
			"X-Forwarded-Proto: http" + bad,
			"X-Request-Id: id" + bad,
			"Accept-Language: en" + bad,
			"If-None-Match: \"" + bad + "\"",
			"Origin: https://conduit.test" + bad,
			"Sec-Fetch-Site: same" + bad,
			"Referer: /" + bad,
		} {
			for _, target := range []string{"/", "/settings", "/api/articles", "/api/user"} {
				cases.addRaw(anyAnswer, rawRequest("GET", target, append([]string{h}, auth...), ""))
			}
			cases.addRaw(refused, rawRequest("POST", "/editor",
				append([]string{h, "Content-Type: application/x-www-form-urlencoded"}, session...), "title="))
		}
	}
	runCases(t, s.n.client("127.0.0.14"), cases, 4)
}

// jsonStrictness: the API decodes JSON only, strictly. A body sent as
// text/plain (which a browser may send across origins without asking) or
// as a form is refused with 415, whatever it holds; a key that matches a
// field only when case is folded — including by Unicode folding, which
// encoding/json applies ("paſſword" with the long s, U+017F) — is refused
// rather than allowed to override the real one; fields a client may not
// set (author, slug, counts) are ignored.
func jsonStrictness(t *testing.T, s *suite) {
	f := &s.f
	m := f.mallory
	c := s.n.client("127.0.0.18")
	newUser := `{"user":{"username":"plainname","email":"plain@example.com","password":"password-plain"}}`
	newArticle := `{"article":{"title":"Plain","description":"d","body":"b","tagList":["fixture"]}}`
	var cases caseList
	for _, ctype := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/jsonx", "text/json", "application/xml", "application/json-seq", ";", "json"} {
		for _, q := range []req{
			{method: "POST", path: "/api/users", body: newUser},
			{method: "POST", path: "/api/users/login", body: `{"user":{"email":"` + m.email + `","password":"` + m.password + `"}}`},
			{method: "POST", path: "/api/articles", body: newArticle, token: m.token},
			{method: "PUT", path: "/api/articles/" + f.mallorySlug, body: `{"article":{"title":"Changed"}}`, token: m.token},
			{method: "PUT", path: "/api/user", body: `{"user":{"bio":"changed"}}`, token: m.token},
			{method: "POST", path: "/api/articles/" + f.slug + "/comments", body: `{"comment":{"body":"plain"}}`, token: m.token},
		} {
			q.ctype = ctype
			cases.add(status(http.StatusUnsupportedMediaType), q)
		}
	}
	for _, b := range []struct{ path, body string }{
		{"/api/users", `{"user":{"USERNAME":"foldname","email":"fold@example.com","password":"password-fold"}}`},
		{"/api/users", `{"USER":{"username":"foldname","email":"fold@example.com","password":"password-fold"}}`},
		{"/api/users", `{"user":{"username":"foldname","Email":"fold@example.com","password":"password-fold"}}`},
		{"/api/users", `{"user":{"username":"foldname","email":"fold@example.com","paſſword":"password-fold"}}`},
		{"/api/users", `{"user":{"uſername":"foldname","email":"fold@example.com","password":"password-fold"}}`},
		{"/api/articles", `{"article":{"title":"Fold","TITLE":"Other","description":"d","body":"b"}}`},
		{"/api/articles", `{"article":{"title":"Fold","deſcription":"d","body":"b"}}`},
		{"/api/articles", `{"article":{"title":"Fold","description":"d","body":"b","TagList":["x"]}}`},
		{"/api/articles", `{"Article":{"title":"Fold","description":"d","body":"b"}}`},
	} {
		cases.add(status(422), req{method: "POST", path: b.path, body: b.body, token: m.token})
	}
	runCases(t, c, cases, 4)

	// What was refused changed nothing of mallory's either.
	var u struct{ User struct{ Bio string } }
	decode(t, c.do(t, req{method: "GET", path: "/api/user", token: m.token}), http.StatusOK, &u)
	var a struct{ Article struct{ Title string } }
	decode(t, c.do(t, req{method: "GET", path: "/api/articles/" + f.mallorySlug}), http.StatusOK, &a)
	if u.User.Bio == "changed" || a.Article.Title == "Changed" {
		t.Errorf("a body that was not JSON changed mallory's things: bio %q, title %q", u.User.Bio, a.Article.Title)
	}
	// Fields a client may not set are ignored, not obeyed.
	r := c.do(t, req{method: "PUT", path: "/api/articles/" + f.mallorySlug, token: m.token, body: `{"article":{"body":"mine",` +
		`"slug":"fixture-article","author":{"username":"alice"},"favoritesCount":1000,"favorited":true,"createdAt":"2000-01-01T00:00:00Z"}}`})
	var got struct {
		Article struct {
			Slug           string
			FavoritesCount int
			Author         struct{ Username string }
		}
	}
	decode(t, r, http.StatusOK, &got)
	if got.Article.Slug != f.mallorySlug || got.Article.FavoritesCount != 0 || got.Article.Author.Username != m.username {
		t.Errorf("fields a client may not set were taken: %s", r)
	}
}

// unicodeNames: names that look like, or fold to, an existing user's —
// U+0130 (İ), the Kelvin sign, fullwidth and Cyrillic letters, NFD
// accents, zero-width and bidi marks, dot segments — are refused at
// sign-up (API and site), find nobody as profiles, and cannot be followed
// in another's place; emails that are another spelling of an existing
// address (case, U+0130, the Kelvin sign, NFD) are "taken", and sign in
// to the one account they spell.
func unicodeNames(t *testing.T, s *suite) {
	f := &s.f
	c := s.n.client("127.0.0.15")
	var cases caseList
	names := []string{
		"adm\u0130n", "\u212Aelvin", "\uff41\uff44\uff4d\uff49\uff4e", "\u0430dmin", "\u00c9lise", "E\u0301lise",
		"elise\u0301", "admin\u200b", "\u202eadmin", "\u00a0admin", "admin\t", ".", "..", "...", "_", "-", "-.-",
		"a b", "a/b", "a%2Fb", "a?b", "a#b", "<admin>", "admin\u0000", strings.Repeat("x", 41), "", "ADMIN", "Admin", " admin ",
	}
	for i, name := range names {
		email := fmt.Sprintf("uni%d@example.com", i)
		cases.add(status(422),
			req{method: "POST", path: "/api/users", body: jsonBody(map[string]any{"user": map[string]string{
				"username": name, "email": email, "password": "password-uni"}})},
			req{method: "POST", path: "/register", body: url.Values{"username": {name}, "email": {email},
				"password": {"password-uni"}}.Encode()},
		)
	}
	for _, email := range []string{
		"ADMIN@example.com", "adm\u0130n@example.com", "Admin@Example.COM", " admin@example.com ",
		"e\u0301lise@example.com", "\u00c9LISE@example.com", "E\u0301LISE@EXAMPLE.COM",
		"victor@\u212Aeep.example", "VICTOR@KEEP.EXAMPLE",
	} {
		cases.add(status(422), req{method: "POST", path: "/api/users", body: jsonBody(map[string]any{"user": map[string]string{
			"username": "freshname", "email": email, "password": "password-uni"}})})
	}
	for _, name := range []string{"adm%C4%B0n", "%E2%84%AAelvin", "%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E", "%D0%B0dmin",
		"E%CC%81lise", "%C3%89lise", "admin%E2%80%8B", "%E2%80%AEadmin"} {
		cases.add(status(404),
			req{method: "GET", path: "/api/profiles/" + name},
			req{method: "GET", path: "/profile/" + name},
			req{method: "POST", path: "/api/profiles/" + name + "/follow", token: f.mallory.token},
			req{method: "POST", path: "/profile/" + name + "/follow", cookie: f.mallory.token},
		)
	}
	runCases(t, c, cases, 4)

	// The one user every ASCII spelling of a name finds.
	for _, name := range []string{"ADMIN", "Admin", "aDmIn"} {
		var p struct{ Profile struct{ Username string } }
		decode(t, c.do(t, req{method: "GET", path: "/api/profiles/" + name}), http.StatusOK, &p)
		if p.Profile.Username != "admin" {
			t.Errorf("/api/profiles/%s is %q, want admin", name, p.Profile.Username)
		}
	}
	// Every spelling of an address signs in to its one account.
	for _, in := range []struct {
		email string
		a     account
	}{
		{"ADMIN@EXAMPLE.COM", f.admin}, {"adm\u0130n@example.com", f.admin},
		{"\u00c9LISE@example.com", f.elise}, {"e\u0301lise@example.com", f.elise},
		{"victor@\u212Aeep.example", f.victim},
	} {
		var u struct{ User struct{ Username string } }
		decode(t, c.do(t, req{method: "POST", path: "/api/users/login", body: jsonBody(map[string]any{"user": map[string]string{
			"email": in.email, "password": in.a.password}})}), http.StatusOK, &u)
		if u.User.Username != in.a.username {
			t.Errorf("signing in as %q gave %q, want %q", in.email, u.User.Username, in.a.username)
		}
	}
}
