package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// hostile is text that every escaper of the previews has work on: markup,
// both quotes, ampersands, a plus (escaped in attributes, not in text),
// characters JavaScript treats as line ends, and text beyond ASCII.
const hostile = `<script>alert("x&y")</script> 'q' a+b “curly” ünï 日本 🙂` + "\u2028"

// hostileTag is the same in a tag's length.
const hostileTag = `<s>"&'+“ü”日🙂` + "\u2028"

// plainSite is s's handler with nothing kept: every preview and the
// popular tags rendered with their page, by the templates alone.
func plainSite(t *testing.T, s *site) *site {
	t.Helper()
	plain := newSiteOn(t, s.svc, Options{})
	h := plain.handler.(*Site).h
	h.fragments = newFragments(h.views, 0)
	return plain
}

// The kept previews, popular tags and article metas must not change a
// byte of any page: a list of articles with hostile titles, descriptions,
// tags and author images, on the home, tag, profile and search pages, and
// the articles' own pages, anonymous (list pages built to be kept, with
// their counts marked, then served from the page cache) and signed in
// (with some articles favorited and an author followed), is the same from
// the kept fragments as from the templates alone, on the first view and on
// the views that reuse what the first one kept.
func TestKeptFragmentsRenderAsTheTemplates(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newSite(t, db, Options{})
		plain := plainSite(t, s)
		authors := []string{"a.b-c_d", "Z9"}
		var slugs []string
		for i, name := range authors {
			u, err := s.svc.Register(ctx, conduit.NewUser{Username: name, Email: fmt.Sprintf("u%d@example.com", i), Password: "password-1"})
			if err != nil {
				t.Fatal(err)
			}
			image := `https://img.example/a.png?x="><script>&y='1'+` + fmt.Sprint(i)
			if _, err := s.svc.UpdateUser(ctx, u.ID, conduit.UserPatch{Image: &image}); err != nil {
				t.Fatal(err)
			}
			for j := range 6 {
				a, err := s.svc.CreateArticle(ctx, u.ID, conduit.NewArticle{
					Title:       fmt.Sprintf("%s %d.%d", hostile, i, j),
					Description: `</p><img src=x onerror=alert(1)> ` + hostile,
					Body:        "body",
					Tags:        []string{hostileTag, `a"b`, "c'd", "x+y", "<b>", fmt.Sprintf("t%d", j)},
				})
				if err != nil {
					t.Fatal(err)
				}
				slugs = append(slugs, a.Slug)
			}
		}
		reader := s.browser().signUp("reader")
		for _, slug := range slugs[:4] {
			wantRedirect(t, reader.post(articlePath(slug)+"/favorite", nil), articlePath(slug))
		}
		wantRedirect(t, reader.post("/profile/"+authors[0]+"/follow", nil), "/profile/"+authors[0])
		paths := []string{
			articlePath(slugs[0]), articlePath(slugs[5]), articlePath(slugs[len(slugs)-1]),
			"/", "/?page=2",
			"/?tag=" + url.QueryEscape(hostileTag),
			`/?tag=x%2By&z="'<>+`,
			"/profile/" + authors[0], "/profile/" + authors[1] + "/favorites", "/profile/reader/favorites",
			"/search?q=alert",
		}
		compare := func(t *testing.T, session string) {
			t.Helper()
			for _, path := range paths {
				for round := range 3 {
					kept, want := get(t, s, path, session), get(t, plain, path, session)
					if kept != want {
						t.Fatalf("GET %s (view %d): the kept fragments' page differs from the templates':\n%s", path, round+1, firstDifference(kept, want))
					}
					if session == "" && round == 1 {
						s.handler.(*Site).h.pages.Clear() // built again, from the kept previews
					}
				}
			}
		}
		t.Run("anonymous", func(t *testing.T) { compare(t, "") })
		t.Run("signed in", func(t *testing.T) {
			compare(t, reader.session)
			// The reader's favorites are shown pressed, for them only.
			if n := strings.Count(get(t, s, "/profile/reader/favorites", reader.session), `aria-pressed="true"`); n != 4 {
				t.Errorf("the reader's favorites page shows %d pressed buttons, want 4", n)
			}
			if n := strings.Count(get(t, s, "/profile/reader/favorites", ""), `aria-pressed="true"`); n != 0 {
				t.Errorf("an anonymous visitor's page shows %d pressed buttons", n)
			}
		})
	})
}

// get returns the body of a 200 answer to GET path, with the session
// cookie if any, its forms' one-time tokens left out.
func get(t *testing.T, s *site, path, session string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if session != "" {
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, rec.Code, rec.Body)
	}
	return formTokens.ReplaceAllString(rec.Body.String(), `name="form_token" value="…"`)
}

// formTokens are the one-time tokens of a page's forms: new on every view.
var formTokens = regexp.MustCompile(`name="form_token" value="[^"]*"`)

// firstDifference shows where two pages part.
func firstDifference(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-200)
	return fmt.Sprintf("kept:      …%s\ntemplates: …%s", a[from:min(len(a), i+200)], b[from:min(len(b), i+200)])
}

// A kept preview or article meta shows its article as it is now: an
// edited title, description or tags, a new avatar, a new username, a
// follow and a favorite by the viewer each show on the next view, and the
// favorites count is the current one.
func TestKeptPreviewsFollowTheirArticle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newSite(t, db, Options{})
		plain := plainSite(t, s)
		author := s.browser().signUp("author")
		slug := author.publish("First title", "go")
		u, err := s.svc.Login(ctx, conduit.SignIn{Email: "author@example.com", Password: "password-author"})
		if err != nil {
			t.Fatal(err)
		}
		reader := s.browser().signUp("reader")
		same := func(path, session string, want ...string) {
			t.Helper()
			kept, templates := get(t, s, path, session), get(t, plain, path, session)
			if kept != templates {
				t.Fatalf("GET %s: the kept fragments' page differs from the templates':\n%s", path, firstDifference(kept, templates))
			}
			for _, w := range want {
				if !strings.Contains(kept, w) {
					t.Errorf("GET %s: no %q in\n%s", path, w, kept)
				}
			}
		}
		same("/", reader.session, "First title", `action="/article/`+slug+`/favorite"`)
		same("/?tag=go", "", "First title")
		same(articlePath(slug), reader.session, `Favorite Article <span class="counter">(0)</span>`, "+</span> Follow author")
		same(articlePath(slug), "", `Favorite Article <span class="counter">(0)</span>`)

		// A title that keeps the slug, a description, then a title that
		// changes the slug.
		title, description := "FIRST Title!", "New description"
		a, err := s.svc.UpdateArticle(ctx, u.ID, slug, conduit.ArticlePatch{Title: &title})
		if err != nil || a.Slug != slug {
			t.Fatalf("edit: slug %q, %v", a.Slug, err)
		}
		same("/", reader.session, title)
		same("/?tag=go", "", title)
		if _, err := s.svc.UpdateArticle(ctx, u.ID, slug, conduit.ArticlePatch{Description: &description}); err != nil {
			t.Fatal(err)
		}
		same("/", reader.session, description)
		same("/?tag=go", "", description)
		tags := []string{"go", "web"}
		if _, err := s.svc.UpdateArticle(ctx, u.ID, slug, conduit.ArticlePatch{Tags: &tags}); err != nil {
			t.Fatal(err)
		}
		same("/", reader.session, `<li class="tag-default tag-pill tag-outline">web</li>`,
			`<li><a href="/?tag=web" class="tag-default tag-pill">web</a></li>`) // the popular tags too
		same("/?tag=go", "", `<li class="tag-default tag-pill tag-outline">web</li>`)
		image, name := "https://img.example/new.png", "writer"
		if _, err := s.svc.UpdateUser(ctx, u.ID, conduit.UserPatch{Image: &image}); err != nil {
			t.Fatal(err)
		}
		same("/", reader.session, image)
		same("/?tag=go", "", image)
		same(articlePath(slug), reader.session, image)
		same(articlePath(slug), "", image)
		wantRedirect(t, reader.post("/profile/author/follow", nil), "/profile/author")
		same(articlePath(slug), reader.session, "−</span> Unfollow author")
		if _, err := s.svc.UpdateUser(ctx, u.ID, conduit.UserPatch{Username: &name}); err != nil {
			t.Fatal(err)
		}
		same("/", reader.session, `href="/profile/writer"`)
		same("/?tag=go", "", `href="/profile/writer"`)
		same(articlePath(slug), "", `href="/profile/writer"`)
		title = "Second title"
		if a, err = s.svc.UpdateArticle(ctx, u.ID, slug, conduit.ArticlePatch{Title: &title}); err != nil {
			t.Fatal(err)
		}
		slug = a.Slug
		wantRedirect(t, reader.post("/article/"+slug+"/favorite", nil), "/article/"+slug)
		same("/", reader.session, "Second title", image, `href="/profile/writer"`, `action="/article/`+slug+`/unfavorite"`,
			`aria-pressed="true">
<span aria-hidden="true">♥</span> 1<span`)
		same(articlePath(slug), reader.session, `Unfavorite Article <span class="counter">(1)</span>`, `href="/profile/writer"`)
		same(articlePath(slug), "", `Favorite Article <span class="counter">(1)</span>`, `href="/profile/writer"`)
		same("/?tag=go", "", "Second title", image, `href="/profile/writer"`, `aria-pressed="false">
<span aria-hidden="true">♥</span> 1<span`)
	})
}

// A preview whose text holds a hole's word is not kept (a hole must be
// found once and only where it was put), and its page is still right.
func TestPreviewHoldingAHoleIsNotKept(t *testing.T) {
	t.Parallel()
	s := newSite(t, storetest.OpenSQLite(t), Options{})
	h := s.handler.(*Site).h
	f := newFragments(h.views, 10)
	a := conduit.Article{ID: 1, Slug: "s", Title: "t " + f.here, Description: "d", Author: conduit.Profile{Username: "u"}}
	if _, ok, err := f.preview(a); ok || err != nil {
		t.Fatalf("a preview whose title holds the hole was kept (%v)", err)
	}
	l := articleList{Articles: []conduit.Article{a}, Here: "/?a=1+2", fragments: f}
	got, err := l.Previews()
	if err != nil {
		t.Fatal(err)
	}
	l.fragments = newFragments(h.views, 0)
	want, err := l.Previews()
	if err != nil {
		t.Fatal(err)
	}
	if got != want || !strings.Contains(string(got), `value="/?a=1&#43;2#article-s"`) {
		t.Errorf("previews:\n%s\nwant\n%s", got, want)
	}
	if _, ok, _ := f.preview(conduit.Article{ID: 2, Slug: "s2", Title: "t", Description: "d"}); !ok {
		t.Error("a plain preview was not kept")
	}
}
