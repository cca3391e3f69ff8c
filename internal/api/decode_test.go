package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// JSON keys are matched exactly: "TITLE" does not stand for "title", nor
// override it; keys the API does not know are ignored. Bodies declared as
// something other than JSON are refused with 415 in the spec's error shape,
// and nothing is written.
func TestStrictJSONBodies(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("strict")
		errs := a.do("POST", "/api/articles", u.token,
			`{"article":{"title":"Lower","TITLE":"Upper","description":"d","body":"b"}}`).
			wantErrors(t, http.StatusUnprocessableEntity, "title")
		if !strings.Contains(errs["title"][0], `"TITLE"`) {
			t.Errorf("title error %q does not name the key sent", errs["title"])
		}
		a.do("POST", "/api/users/login", "", `{"USER":{"email":"`+u.email+`","password":"`+u.password+`"}}`).
			wantErrors(t, http.StatusUnprocessableEntity, "user")
		// Unknown keys, at any level, are ignored.
		var created struct{ Article articleDTO }
		a.do("POST", "/api/articles", u.token,
			`{"article":{"title":"Known","description":"d","body":"b","extra":1},"client":"x"}`).
			want(t, http.StatusCreated, &created)
		if created.Article.Title != "Known" {
			t.Fatalf("created %+v", created.Article)
		}

		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded"} {
			req, _ := http.NewRequest("POST", a.url+"/api/articles",
				strings.NewReader(`{"article":{"title":"Smuggled","description":"d","body":"b"}}`))
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", "Token "+u.token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnsupportedMediaType ||
				string(b) != `{"errors":{"body":["must be sent as application/json"]}}`+"\n" {
				t.Errorf("JSON sent as %s: %d %s, want 415 in the spec's error shape", ct, res.StatusCode, b)
			}
		}
		var list struct {
			Articles      []articleDTO
			ArticlesCount int
		}
		a.do("GET", "/api/articles?author="+u.username, "", nil).want(t, http.StatusOK, &list)
		if list.ArticlesCount != 1 {
			t.Errorf("%d articles by the author, want only the one sent as JSON", list.ArticlesCount)
		}
	})
}
