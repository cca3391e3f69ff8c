package web

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// badText are byte sequences that are not text: a byte that is never
// UTF-8, an over-long encoding of '/', a UTF-16 surrogate encoded as
// UTF-8, and NUL.
var badText = []string{"\xff", "\xc0\xaf", "\xed\xa0\x80", "\x00"}

// Every text input of the site — each path parameter of each route, each
// query parameter, each field of each form — answers each sequence of
// badText without a 5xx (404 for a path, a 422 page for a query, the form
// again with a 422 for a field the site keeps), and nothing reaches the
// database: on PostgreSQL these gave 500s, on SQLite they were stored.
func TestNonTextRefusedEverywhere(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newSite(t, db, Options{})
		author := s.browser().signUp("author")
		s.browser().signUp("reader")
		slug := author.publish("Clean", "go")
		wantRedirect(t, author.post(articlePath(slug)+"/comments", url.Values{"body": {"hi"}}), articlePath(slug)+"#comments")
		a, err := s.svc.Article(ctx, 0, slug)
		if err != nil {
			t.Fatal(err)
		}
		page, err := s.svc.Comments(ctx, 0, slug, conduit.CommentFilter{})
		if err != nil || len(page.Comments) != 1 {
			t.Fatalf("comments: %v, %v", page.Comments, err)
		}
		cid := strconv.FormatInt(page.Comments[0].ID, 10)
		reader, err := s.svc.Profile(ctx, 0, "reader")
		if err != nil {
			t.Fatal(err)
		}
		ids := []int64{a.Author.ID, reader.ID}
		before := storetest.ReadState(t, db, ids, slug)

		type request struct {
			method, path string
			form         url.Values
			status       int // 0: any but a 5xx
		}
		// The valid forms; each field in turn gets a bad value.
		forms := []struct {
			path   string
			fields url.Values
			status int
		}{
			{"/login", url.Values{"email": {"author@example.com"}, "password": {"password-author"}, "next": {"/editor"}}, 422},
			{"/register", url.Values{"username": {"fresh"}, "email": {"fresh@example.com"}, "password": {"password1"}}, 422},
			{"/settings", url.Values{"image": {"https://img.example/a.png"}, "username": {"author"}, "bio": {"bio"},
				"email": {"author@example.com"}, "password": {"password2"}}, 422},
			{"/editor", url.Values{"title": {"Title"}, "description": {"d"}, "body": {"b"}, "tags": {"go sql"}}, 422},
			{"/editor/" + slug, url.Values{"title": {"Title"}, "description": {"d"}, "body": {"b"}, "tags": {"go sql"}}, 422},
			{"/article/" + slug + "/comments", url.Values{"body": {"hello"}}, 422},
			// Buttons whose only field is where to go back to; none of
			// these writes anything here (nothing to undo).
			{"/article/" + slug + "/unfavorite", url.Values{"next": {"/"}}, 0},
			{"/profile/reader/unfollow", url.Values{"next": {"/"}}, 0},
		}
		var reqs []request
		for _, bad := range badText {
			p := url.PathEscape(bad)
			badSlug := slug[:1] + p + slug[1:]
			badUser := "r" + p + "eader"
			for _, r := range []request{
				{method: "GET", path: "/editor/" + badSlug},
				{method: "POST", path: "/editor/" + badSlug, form: url.Values{"title": {"T"}, "description": {"d"}, "body": {"b"}}},
				{method: "GET", path: "/article/" + badSlug},
				{method: "POST", path: "/article/" + badSlug + "/delete"},
				{method: "POST", path: "/article/" + badSlug + "/favorite"},
				{method: "POST", path: "/article/" + badSlug + "/unfavorite"},
				{method: "POST", path: "/article/" + badSlug + "/comments", form: url.Values{"body": {"hello"}}},
				{method: "POST", path: "/article/" + badSlug + "/comments/" + cid + "/delete"},
				{method: "POST", path: "/article/" + slug + "/comments/" + cid + p + "/delete"},
				{method: "GET", path: "/profile/" + badUser},
				{method: "GET", path: "/profile/" + badUser + "/favorites"},
				{method: "POST", path: "/profile/" + badUser + "/follow"},
				{method: "POST", path: "/profile/" + badUser + "/unfollow"},
				{method: "GET", path: staticPrefix + "a" + p + ".css"},
			} {
				r.status = http.StatusNotFound
				reqs = append(reqs, r)
			}
			q := url.QueryEscape(bad)
			for _, path := range []string{"/", "/login", "/register", "/profile/reader", "/profile/reader/favorites", "/article/" + slug} {
				for _, param := range []string{"tag", "feed", "page", "next", "other"} {
					reqs = append(reqs, request{method: "GET", path: path + "?" + param + "=a" + q + "b", status: 422})
				}
				reqs = append(reqs, request{method: "GET", path: path + "?t" + q + "g=go", status: 422})
			}
			for _, f := range forms {
				for field := range maps.Keys(f.fields) {
					form := maps.Clone(f.fields)
					v := form.Get(field)
					form.Set(field, v[:1]+bad+v[1:])
					status := f.status
					if field == "next" {
						status = 0 // where to go next is not kept; a safe address or "/" is used
					}
					reqs = append(reqs, request{method: "POST", path: f.path, form: form, status: status})
				}
			}
		}

		for _, r := range reqs {
			name := fmt.Sprintf("%s %q %q", r.method, r.path, r.form.Encode())
			var res response
			if r.method == "GET" {
				res = author.get(r.path)
			} else {
				res = author.post(r.path, r.form)
			}
			switch {
			case res.StatusCode >= 500 || r.status != 0 && res.StatusCode != r.status:
				t.Errorf("%s: status %d, want %d\n%.300s", name, res.StatusCode, r.status, res.Body)
			case res.StatusCode == http.StatusUnprocessableEntity && r.form != nil && len(errorMessages(res.Body)) == 0:
				t.Errorf("%s: 422 without the form's error list\n%.300s", name, res.Body)
			}
			if author.session == "" { // a sign-in form may have replaced it; keep one
				author.session = s.sessionOf(a.Author.ID)
			}
			if after := storetest.ReadState(t, db, ids, slug); !reflect.DeepEqual(after, before) {
				t.Fatalf("%s changed the database:\nbefore %+v\nafter  %+v", name, before, after)
			}
		}
		if len(reqs) < 150 {
			t.Fatalf("only %d requests", len(reqs))
		}
	})
}

// sessionOf returns a session token of the user.
func (s *site) sessionOf(id int64) string { return s.tokens.Issue(id, 0) }
