//go:build linux

package hostile

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// hcase is one hostile request and what its answer must be.
type hcase struct {
	q    req    // sent with net/http…
	raw  string // …or exactly these bytes, when set
	want answer
}

// answer says which statuses a case accepts; every case also refuses a
// 5xx and no answer at all.
type answer struct {
	ok   func(status int) bool
	desc string
}

var (
	anyAnswer = answer{func(int) bool { return true }, "any answer but a 5xx"}
	failed    = answer{func(s int) bool { return s < 200 || s >= 300 }, "anything but a success"}
	refused   = answer{func(s int) bool { return s >= 400 && s < 500 }, "a 4xx"}
	// notDone is what a site action may answer when it must do nothing:
	// a 4xx, or a redirect to sign in.
	notDone = answer{func(s int) bool { return s >= 400 && s < 500 || s == 303 }, "a 4xx or a redirect to sign in"}
)

func status(code int) answer {
	return answer{func(s int) bool { return s == code }, fmt.Sprint(code)}
}

func (h hcase) String() string {
	if h.raw != "" {
		return fmt.Sprintf("%.200q", h.raw)
	}
	return fmt.Sprintf("%s %.200q body %.120q ctype %q header %.100q", h.q.method, h.q.path, h.q.body, h.q.ctype, h.q.header)
}

// caseList collects hostile requests.
type caseList []hcase

// add appends requests sent with net/http that must get want.
func (l *caseList) add(want answer, qs ...req) {
	for _, q := range qs {
		*l = append(*l, hcase{q: q, want: want})
	}
}

// addRaw appends requests sent as these bytes that must get want.
func (l *caseList) addRaw(want answer, raws ...string) {
	for _, raw := range raws {
		*l = append(*l, hcase{raw: raw, want: want})
	}
}

// runCases sends every case, workers at a time, and checks each answer.
func runCases(t *testing.T, c *client, cases caseList, workers int) {
	t.Helper()
	concurrently(len(cases), workers, func(i int) reply {
		h := cases[i]
		var r reply
		if h.raw != "" {
			r = c.raw(t, h.raw)
		} else {
			r = c.do(t, h.q)
		}
		if r.status != 0 && r.status < 500 && !h.want.ok(r.status) {
			t.Errorf("%s: %s, want %s", h, r, h.want.desc)
		}
		return r
	})
	t.Logf("%d hostile requests", len(cases))
}

// concurrently runs n calls of do, workers at a time, and returns their
// answers in call order.
func concurrently(n, workers int, do func(i int) reply) []reply {
	out := make([]reply, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = do(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// route is one route of the API, its parameters to be filled in.
type route struct {
	method, path string
	envelope     string   // the JSON body's envelope; "" for a route that reads no body
	fields       []string // the envelope's string fields
}

// apiRoutes is the API's whole URL surface (internal/api.New).
var apiRoutes = []route{
	{"POST", "/api/users/login", "user", []string{"email", "password"}},
	{"POST", "/api/users", "user", []string{"username", "email", "password"}},
	{"GET", "/api/user", "", nil},
	{"PUT", "/api/user", "user", []string{"username", "email", "password", "bio", "image"}},
	{"POST", "/api/user/logout", "", nil},
	{"POST", "/api/user/logout-all", "", nil},
	{"GET", "/api/profiles/{username}", "", nil},
	{"POST", "/api/profiles/{username}/follow", "", nil},
	{"DELETE", "/api/profiles/{username}/follow", "", nil},
	{"GET", "/api/articles", "", nil},
	{"GET", "/api/articles/feed", "", nil},
	{"POST", "/api/articles", "article", []string{"title", "description", "body", "tagList"}},
	{"GET", "/api/articles/{slug}", "", nil},
	{"PUT", "/api/articles/{slug}", "article", []string{"title", "description", "body", "tagList"}},
	{"DELETE", "/api/articles/{slug}", "", nil},
	{"POST", "/api/articles/{slug}/favorite", "", nil},
	{"DELETE", "/api/articles/{slug}/favorite", "", nil},
	{"GET", "/api/articles/{slug}/comments", "", nil},
	{"POST", "/api/articles/{slug}/comments", "comment", []string{"body"}},
	{"DELETE", "/api/articles/{slug}/comments/{id}", "", nil},
	{"GET", "/api/tags", "", nil},
}

// at is the route's path with its parameters (already escaped as wanted).
func (r route) at(slug, username, id string) string {
	return strings.NewReplacer("{slug}", slug, "{username}", username, "{id}", id).Replace(r.path)
}

func (r route) has(param string) bool { return strings.Contains(r.path, "{"+param+"}") }

// validBody is a body the route accepts, with value in field (the others
// valid), for a signed-in user changing their own things. Its field values
// are all ASCII letters, so that a byte put inside one stays inside it.
func (r route) validBody(field, value string) string {
	vals := map[string]string{"username": "freshname", "email": "fresh@example.com", "password": "password-fresh",
		"bio": "bio", "image": "https://img.example/a.png", "title": "Fresh title", "description": "about",
		"body": "text"}
	var parts []string
	for _, f := range r.fields {
		v := vals[f]
		if f == field {
			v = value
		}
		if f == "tagList" {
			if f != field {
				v = "fresh"
			}
			parts = append(parts, fmt.Sprintf(`"tagList":["%s"]`, v))
			continue
		}
		parts = append(parts, fmt.Sprintf(`"%s":"%s"`, f, v))
	}
	return fmt.Sprintf(`{"%s":{%s}}`, r.envelope, strings.Join(parts, ","))
}

// siteForm is a form of the site, with valid values.
type siteForm struct {
	path   string
	fields url.Values
}

// dataForms are the site's forms that carry what users type; with one
// bad field they answer the form again (4xx) and store nothing.
func dataForms(f *fixture) []siteForm {
	m := f.mallory
	article := url.Values{"title": {"Fresh title"}, "description": {"about"}, "body": {"text"}, "tags": {"fresh"}}
	return []siteForm{
		{"/login", url.Values{"email": {m.email}, "password": {m.password}}},
		{"/register", url.Values{"username": {"freshname"}, "email": {"fresh@example.com"}, "password": {"password-fresh"}}},
		{"/settings", url.Values{"image": {"https://img.example/a.png"}, "username": {m.username}, "bio": {"bio"},
			"email": {m.email}, "password": {"password-new"}}},
		{"/editor", article},
		{"/editor/" + f.mallorySlug, article},
		{"/article/" + f.slug + "/comments", url.Values{"body": {"text"}}},
	}
}

// actionPaths are the site's buttons (forms without typed data), with
// the fixture's values; they act on the path alone.
func actionPaths(slug, username, id string) []string {
	return []string{
		"/logout", "/logout-everywhere",
		"/article/" + slug + "/delete", "/article/" + slug + "/favorite", "/article/" + slug + "/unfavorite",
		"/article/" + slug + "/comments/" + id + "/delete",
		"/profile/" + username + "/follow", "/profile/" + username + "/unfollow",
	}
}

// sitePages are the site's GET pages.
func sitePages(slug, username, mallorySlug string) []string {
	return []string{"/", "/login", "/register", "/settings", "/editor", "/editor/" + mallorySlug,
		"/article/" + slug, "/profile/" + username, "/profile/" + username + "/favorites"}
}
