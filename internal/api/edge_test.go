package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Odd but well-formed input never produces a 5xx.
func TestOddInputNever5xx(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("odd")
		art := a.createArticle(u, newArticle{Title: "Odd"})
		long := strings.Repeat("x", 5000)
		cases := []struct {
			method, path string
			token        string
			body         any
		}{
			{"GET", "/api/articles/" + long, "", nil},
			{"GET", "/api/articles/" + url.PathEscape("ünï cödé/…"), "", nil},
			{"GET", "/api/profiles/" + url.PathEscape("a/b"), "", nil},
			{"GET", "/api/profiles/" + long, u.token, nil},
			{"GET", "/api/articles?limit=99999999999999999999999", "", nil},
			{"GET", "/api/articles?offset=1000001", "", nil},
			{"GET", "/api/articles?offset=1000000", "", nil},
			{"GET", "/api/articles?limit=100&offset=999999", "", nil},
			{"GET", "/api/articles?tag=" + url.QueryEscape("'; DROP TABLE articles; --"), "", nil},
			{"GET", "/api/articles?author=%25&favorited=_", "", nil},
			{"GET", "/api/articles?tag=a&tag=b", "", nil},
			{"DELETE", "/api/articles/" + art.Slug + "/comments/99999999999999999999", u.token, nil},
			{"DELETE", "/api/articles/" + art.Slug + "/comments/0", u.token, nil},
			{"GET", "/api/user", strings.Repeat("a.", 3000) + "a", nil},
			{"POST", "/api/users", "", map[string]any{"user": map[string]string{"username": "nul\x00byte", "email": "nul@example.com", "password": "12345678"}}},
			{"POST", "/api/users", "", map[string]any{"user": map[string]string{"username": "ok", "email": "a@b@c", "password": "12345678"}}},
			{"POST", "/api/users", "", map[string]any{"user": map[string]string{"username": "emoji😀", "email": "e@example.com", "password": "1234567😀"}}},
			{"POST", "/api/articles", u.token, map[string]any{"article": map[string]any{"title": "!!!", "description": "d", "body": "b"}}},
			{"POST", "/api/articles", u.token, map[string]any{"article": map[string]any{"title": "!!!", "description": "d", "body": "b"}}},
			{"POST", "/api/articles", u.token, map[string]any{"article": map[string]any{"title": "t", "description": "d\u202e", "body": "<script>x</script>", "tagList": []string{"\u00a0"}}}},
			{"POST", "/api/articles", u.token, map[string]any{"article": map[string]any{"title": "ok", "description": "d", "body": "b", "tagList": nil}}},
			{"PUT", "/api/articles/" + art.Slug, u.token, map[string]any{"article": map[string]any{}}},
			{"PUT", "/api/articles/" + art.Slug, u.token, map[string]any{"article": nil}},
			{"PUT", "/api/user", u.token, map[string]any{"user": map[string]any{"bio": nil, "image": nil}}},
			{"PUT", "/api/user", u.token, map[string]any{"user": map[string]any{"email": u.email}}},
			{"PUT", "/api/user", u.token, map[string]any{"user": map[string]any{"username": strings.ToUpper(u.username)}}},
			{"POST", "/api/articles/" + art.Slug + "/comments", u.token, map[string]any{"comment": map[string]any{"body": long}}},
		}
		for _, c := range cases {
			name := fmt.Sprintf("%s %.60s", c.method, c.path)
			t.Run(name, func(t *testing.T) {
				r := a.do(c.method, c.path, c.token, c.body)
				if r.status >= 500 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				if r.status >= 400 {
					r.wantErrors(t, r.status)
				}
			})
		}
	})
}

// NUL characters, which PostgreSQL cannot store in text, are refused with a
// 4xx on every backend.
func TestNULRefused(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("nul")
		art := a.createArticle(u, newArticle{Title: "Clean"})
		cases := []struct {
			method, path string
			body         any
			status       int
			field        string
		}{
			{"POST", "/api/articles", map[string]any{"article": map[string]any{"title": "t\x00", "description": "d", "body": "b"}}, 422, "title"},
			{"POST", "/api/articles", map[string]any{"article": map[string]any{"title": "t", "description": "d", "body": "b\x00"}}, 422, "body"},
			{"POST", "/api/articles", map[string]any{"article": map[string]any{"title": "t", "description": "d", "body": "b", "tagList": []string{"x\x00"}}}, 422, "tagList"},
			{"PUT", "/api/articles/" + art.Slug, map[string]any{"article": map[string]any{"description": "\x00"}}, 422, "description"},
			{"POST", "/api/articles/" + art.Slug + "/comments", map[string]any{"comment": map[string]any{"body": "hi\x00"}}, 422, "body"},
			{"PUT", "/api/user", map[string]any{"user": map[string]any{"bio": "\x00"}}, 422, "bio"},
			{"PUT", "/api/user", map[string]any{"user": map[string]any{"email": "a\x00@example.com"}}, 422, "email"},
			{"POST", "/api/users/login", map[string]any{"user": map[string]any{"email": "a\x00@example.com", "password": "x\x00"}}, 401, ""},
			{"GET", "/api/articles/" + art.Slug + "%00", nil, 404, ""},
			{"GET", "/api/profiles/" + u.username + "%00", nil, 404, ""},
			{"POST", "/api/profiles/" + u.username + "%00/follow", nil, 404, ""},
			{"GET", "/api/articles?tag=go%00", nil, 422, "tag"},
			{"GET", "/api/articles?author=" + u.username + "%00", nil, 422, "author"},
			{"GET", "/api/articles?favorited=%00", nil, 422, "favorited"},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s %s %v", c.method, c.path, c.body), func(t *testing.T) {
				var fields []string
				if c.field != "" {
					fields = append(fields, c.field)
				}
				a.do(c.method, c.path, u.token, c.body).wantErrors(t, c.status, fields...)
			})
		}
	})
}

// Racing writers get exact results: one of two equal registrations wins,
// and concurrent favorites of one article count each user once.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		const n = 8
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = a.do("POST", "/api/users", "", map[string]any{"user": map[string]string{
					"username": []string{"Racer", "racer", "RACER"}[i%3], "email": fmt.Sprintf("racer%d@example.com", i), "password": "12345678",
				}}).status
			}()
		}
		wg.Wait()
		created := 0
		for _, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusUnprocessableEntity:
			default:
				t.Errorf("racing registration: status %d", st)
			}
		}
		if created != 1 {
			t.Errorf("%d registrations of one username succeeded, want 1", created)
		}

		author := a.register("fav")
		art := a.createArticle(author, newArticle{Title: "Race"})
		fans := make([]user, 4)
		for i := range fans {
			fans[i] = a.register("fan")
		}
		for _, f := range fans {
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if st := a.do("POST", "/api/articles/"+art.Slug+"/favorite", f.token, nil).status; st != 200 {
						t.Errorf("favorite: %d", st)
					}
				}()
			}
		}
		wg.Wait()
		if got := a.article(art.Slug, "").FavoritesCount; got != len(fans) {
			t.Errorf("favoritesCount = %d after %d users favorited 3 times each", got, len(fans))
		}
	})
}

func TestUpdateTitleToTakenSlug(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("slugger")
		first := a.createArticle(u, newArticle{Title: "Taken"})
		second := a.createArticle(u, newArticle{Title: "Other"})
		var got struct{ Article articleDTO }
		a.do("PUT", "/api/articles/"+second.Slug, u.token, map[string]any{"article": map[string]any{"title": "Taken"}}).want(t, 200, &got)
		if got.Article.Slug == first.Slug || !strings.HasPrefix(got.Article.Slug, "taken-") {
			t.Errorf("slug after retitling to a taken title = %q", got.Article.Slug)
		}
		if a.article(first.Slug, "").Title != "Taken" || a.article(got.Article.Slug, "").Title != "Taken" {
			t.Error("articles mixed up")
		}
		// Changing only the case of the title keeps the slug.
		a.do("PUT", "/api/articles/"+first.Slug, u.token, map[string]any{"article": map[string]any{"title": "TAKEN"}}).want(t, 200, &got)
		if got.Article.Slug != first.Slug {
			t.Errorf("slug after a case change = %q, want %q", got.Article.Slug, first.Slug)
		}
	})
}
