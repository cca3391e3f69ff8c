package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func TestCreateGetUpdateDeleteArticle(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		author, other := a.register("author"), a.register("other")

		var created struct{ Article articleDTO }
		a.do("POST", "/api/articles", author.token, map[string]any{"article": map[string]any{
			"title": "How to Train Your Dragon", "description": "Ever wonder how?", "body": "You have to believe",
			"tagList": []string{"dragons", " training ", "dragons", ""},
		}}).want(t, http.StatusCreated, &created)
		art := created.Article
		if art.Slug != "how-to-train-your-dragon" || art.Title != "How to Train Your Dragon" ||
			art.Description != "Ever wonder how?" || art.Body == nil || *art.Body != "You have to believe" ||
			!slices.Equal(art.TagList, []string{"dragons", "training"}) || art.Favorited || art.FavoritesCount != 0 ||
			art.Author.Username != author.username || art.Author.Following {
			t.Fatalf("created article = %+v", art)
		}
		checkTime(t, "createdAt", art.CreatedAt)
		checkTime(t, "updatedAt", art.UpdatedAt)

		t.Run("get", func(t *testing.T) {
			for _, tok := range []string{"", author.token, other.token} {
				got := a.article(art.Slug, tok)
				if got.Slug != art.Slug || got.Body == nil || *got.Body != "You have to believe" ||
					!slices.Equal(got.TagList, art.TagList) || got.CreatedAt != art.CreatedAt {
					t.Errorf("GET as %q = %+v", tok, got)
				}
			}
			a.do("GET", "/api/articles/no-such-article", "", nil).wantErrors(t, http.StatusNotFound)
		})

		t.Run("same title gets a different slug", func(t *testing.T) {
			dup := a.createArticle(other, newArticle{Title: "How to train your dragon!"})
			if dup.Slug == art.Slug || !strings.HasPrefix(dup.Slug, "how-to-train-your-dragon") {
				t.Errorf("second slug = %q", dup.Slug)
			}
		})

		t.Run("invalid", func(t *testing.T) {
			cases := []struct {
				name    string
				article map[string]any
				fields  []string
			}{
				{"empty", map[string]any{}, []string{"title", "description", "body"}},
				{"blank title", map[string]any{"title": "  ", "description": "d", "body": "b"}, []string{"title"}},
				{"no body", map[string]any{"title": "t", "description": "d"}, []string{"body"}},
				{"title too long", map[string]any{"title": strings.Repeat("t", 201), "description": "d", "body": "b"}, []string{"title"}},
				{"too many tags", map[string]any{"title": "t", "description": "d", "body": "b", "tagList": strings.Split("a b c d e f g h i j k", " ")}, []string{"tagList"}},
				{"tag too long", map[string]any{"title": "t", "description": "d", "body": "b", "tagList": []string{strings.Repeat("x", 41)}}, []string{"tagList"}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					a.do("POST", "/api/articles", author.token, map[string]any{"article": c.article}).
						wantErrors(t, http.StatusUnprocessableEntity, c.fields...)
				})
			}
			a.do("POST", "/api/articles", author.token, `{}`).wantErrors(t, http.StatusUnprocessableEntity, "title")
		})

		t.Run("update", func(t *testing.T) {
			put := func(slug, token string, fields map[string]any) response {
				return a.do("PUT", "/api/articles/"+slug, token, map[string]any{"article": fields})
			}
			put(art.Slug, other.token, map[string]any{"body": "hijacked"}).wantErrors(t, http.StatusForbidden)
			put("no-such-article", author.token, map[string]any{"body": "x"}).wantErrors(t, http.StatusNotFound)
			put(art.Slug, author.token, map[string]any{"title": ""}).wantErrors(t, http.StatusUnprocessableEntity, "title")
			if got := a.article(art.Slug, ""); *got.Body != "You have to believe" || got.Title != art.Title {
				t.Fatalf("refused updates changed the article: %+v", got)
			}

			var upd struct{ Article articleDTO }
			put(art.Slug, author.token, map[string]any{"body": "With patience"}).want(t, 200, &upd)
			if upd.Article.Slug != art.Slug || *upd.Article.Body != "With patience" || upd.Article.Description != art.Description ||
				!slices.Equal(upd.Article.TagList, art.TagList) {
				t.Fatalf("body update = %+v", upd.Article)
			}
			if upd.Article.UpdatedAt < art.UpdatedAt {
				t.Errorf("updatedAt went back: %s < %s", upd.Article.UpdatedAt, art.UpdatedAt)
			}

			put(art.Slug, author.token, map[string]any{"title": "Did you train your dragon?"}).want(t, 200, &upd)
			if upd.Article.Slug != "did-you-train-your-dragon" || upd.Article.Title != "Did you train your dragon?" {
				t.Fatalf("title update = %+v", upd.Article)
			}
			if old := a.article(art.Slug, ""); old.Slug != upd.Article.Slug { // slug history: the old slug still answers
				t.Errorf("article under the old slug = %+v", old)
			}
			if got := a.article("did-you-train-your-dragon", ""); *got.Body != "With patience" {
				t.Errorf("article under the new slug = %+v", got)
			}
			art.Slug = upd.Article.Slug

			put(art.Slug, author.token, map[string]any{"tagList": []string{"flying"}}).want(t, 200, &upd)
			if !slices.Equal(upd.Article.TagList, []string{"flying"}) {
				t.Errorf("tag update = %v", upd.Article.TagList)
			}
		})

		t.Run("delete", func(t *testing.T) {
			a.do("POST", "/api/articles/"+art.Slug+"/favorite", other.token, nil).want(t, 200, nil)
			a.do("POST", "/api/articles/"+art.Slug+"/comments", other.token, map[string]any{"comment": map[string]string{"body": "nice"}}).want(t, 200, nil)

			a.do("DELETE", "/api/articles/"+art.Slug, other.token, nil).wantErrors(t, http.StatusForbidden)
			a.article(art.Slug, "")
			a.do("DELETE", "/api/articles/"+art.Slug, author.token, nil).want(t, http.StatusNoContent, nil)
			a.do("GET", "/api/articles/"+art.Slug, "", nil).wantErrors(t, http.StatusNotFound)
			a.do("DELETE", "/api/articles/"+art.Slug, author.token, nil).wantErrors(t, http.StatusNotFound)
			a.do("GET", "/api/articles/"+art.Slug+"/comments", "", nil).wantErrors(t, http.StatusNotFound)
			if l := a.list("/api/articles?favorited="+other.username, ""); l.ArticlesCount != 0 {
				t.Errorf("deleted article still among favorites: %+v", l)
			}
		})
	})
}

// seed writes a known set of articles: alice writes 3 tagged "go" (the
// middle one also "sql"), bob writes 2 tagged "sql"; carol favorites
// alice's first and bob's last; dave follows alice.
type seeded struct {
	alice, bob, carol, dave user
	aliceSlugs, bobSlugs    []string // oldest first
}

func seed(a *testAPI) seeded {
	a.t.Helper()
	s := seeded{alice: a.register("alice"), bob: a.register("bob"), carol: a.register("carol"), dave: a.register("dave")}
	for i := range 3 {
		tags := []string{"go"}
		if i == 1 {
			tags = append(tags, "sql")
		}
		s.aliceSlugs = append(s.aliceSlugs, a.createArticle(s.alice, newArticle{Title: fmt.Sprintf("Alice %d", i), TagList: tags}).Slug)
	}
	for i := range 2 {
		s.bobSlugs = append(s.bobSlugs, a.createArticle(s.bob, newArticle{Title: fmt.Sprintf("Bob %d", i), TagList: []string{"sql"}}).Slug)
	}
	a.do("POST", "/api/articles/"+s.aliceSlugs[0]+"/favorite", s.carol.token, nil).want(a.t, 200, nil)
	a.do("POST", "/api/articles/"+s.bobSlugs[1]+"/favorite", s.carol.token, nil).want(a.t, 200, nil)
	a.do("POST", "/api/profiles/"+s.alice.username+"/follow", s.dave.token, nil).want(a.t, 200, nil)
	return s
}

func slugsOf(l articlesDTO) []string {
	out := make([]string, len(l.Articles))
	for i, a := range l.Articles {
		out[i] = a.Slug
	}
	return out
}

func rev(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func TestListArticles(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		s := seed(a)
		all := append(rev(s.bobSlugs), rev(s.aliceSlugs)...)

		cases := []struct {
			name  string
			query string
			want  []string
			count int
		}{
			{"all, newest first", "", all, 5},
			{"tag go", "?tag=go", rev(s.aliceSlugs), 3},
			{"tag sql", "?tag=sql", []string{s.bobSlugs[1], s.bobSlugs[0], s.aliceSlugs[1]}, 3},
			{"unknown tag", "?tag=nope", []string{}, 0},
			{"author", "?author=" + s.bob.username, rev(s.bobSlugs), 2},
			{"author in other case", "?author=" + strings.ToUpper(s.bob.username), rev(s.bobSlugs), 2},
			{"unknown author", "?author=nobody", []string{}, 0},
			{"favorited", "?favorited=" + s.carol.username, []string{s.bobSlugs[1], s.aliceSlugs[0]}, 2},
			{"favorited by someone with none", "?favorited=" + s.dave.username, []string{}, 0},
			{"tag and author", "?tag=sql&author=" + s.alice.username, []string{s.aliceSlugs[1]}, 1},
			{"tag and favorited", "?tag=go&favorited=" + s.carol.username, []string{s.aliceSlugs[0]}, 1},
			{"limit", "?limit=2", all[:2], 5},
			{"limit and offset", "?limit=2&offset=2", all[2:4], 5},
			{"offset past the end", "?offset=2&limit=10", all[2:], 5},
			{"offset beyond all", "?offset=50", []string{}, 5},
			{"filter with page", "?tag=go&limit=1&offset=1", []string{s.aliceSlugs[1]}, 3},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var raw struct {
					Articles      []map[string]json.RawMessage `json:"articles"`
					ArticlesCount int                          `json:"articlesCount"`
					NextCursor    string                       `json:"nextCursor"`
				}
				r := a.do("GET", "/api/articles"+c.query, "", nil)
				r.want(t, 200, &raw)
				if raw.Articles == nil {
					t.Fatalf("articles is null, want a list: %s", r.body)
				}
				for _, art := range raw.Articles {
					if _, ok := art["body"]; ok {
						t.Errorf("list item has a body: %v", art)
					}
				}
				l := a.list("/api/articles"+c.query, "")
				if got := slugsOf(l); !slices.Equal(got, c.want) {
					t.Errorf("slugs = %v, want %v", got, c.want)
				}
				if l.ArticlesCount != c.count {
					t.Errorf("articlesCount = %d, want %d", l.ArticlesCount, c.count)
				}
			})
		}

		t.Run("bad paging", func(t *testing.T) {
			for _, q := range []string{"limit=-1", "limit=abc", "limit=0", "offset=-3", "offset=x", "limit=1000"} {
				a.do("GET", "/api/articles?"+q, "", nil).wantErrors(t, http.StatusUnprocessableEntity)
				a.do("GET", "/api/articles/feed?"+q, s.dave.token, nil).wantErrors(t, http.StatusUnprocessableEntity)
			}
		})

		t.Run("flags per viewer", func(t *testing.T) {
			counts := map[string]int{s.aliceSlugs[0]: 1, s.bobSlugs[1]: 1}
			viewers := []struct {
				name      string
				token     string
				favorited []string
				following []string // authors
			}{
				{"anonymous", "", nil, nil},
				{"carol", s.carol.token, []string{s.aliceSlugs[0], s.bobSlugs[1]}, nil},
				{"dave", s.dave.token, nil, []string{s.alice.username}},
				{"alice", s.alice.token, nil, nil},
			}
			for _, v := range viewers {
				t.Run(v.name, func(t *testing.T) {
					l := a.list("/api/articles", v.token)
					for _, art := range l.Articles {
						if art.Favorited != slices.Contains(v.favorited, art.Slug) {
							t.Errorf("%s: favorited = %v", art.Slug, art.Favorited)
						}
						if art.FavoritesCount != counts[art.Slug] {
							t.Errorf("%s: favoritesCount = %d, want %d", art.Slug, art.FavoritesCount, counts[art.Slug])
						}
						if art.Author.Following != slices.Contains(v.following, art.Author.Username) {
							t.Errorf("%s: author.following = %v", art.Slug, art.Author.Following)
						}
						checkTime(t, "createdAt", art.CreatedAt)
						checkTime(t, "updatedAt", art.UpdatedAt)
						// GET of one article agrees with the list.
						one := a.article(art.Slug, v.token)
						if one.Favorited != art.Favorited || one.FavoritesCount != art.FavoritesCount ||
							one.Author.Following != art.Author.Following || !slices.Equal(one.TagList, art.TagList) {
							t.Errorf("%s: GET %+v disagrees with list %+v", art.Slug, one, art)
						}
					}
				})
			}
		})
	})
}

func TestFeed(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		s := seed(a)

		l := a.list("/api/articles/feed", s.dave.token)
		if got := slugsOf(l); !slices.Equal(got, rev(s.aliceSlugs)) || l.ArticlesCount != 3 {
			t.Errorf("dave's feed = %v (%d), want %v (3)", got, l.ArticlesCount, rev(s.aliceSlugs))
		}
		for _, art := range l.Articles {
			if !art.Author.Following || art.Body != nil {
				t.Errorf("feed item %+v: want following author and no body", art)
			}
		}
		l = a.list("/api/articles/feed?limit=1&offset=1", s.dave.token)
		if got := slugsOf(l); !slices.Equal(got, []string{s.aliceSlugs[1]}) || l.ArticlesCount != 3 {
			t.Errorf("paged feed = %v (%d)", got, l.ArticlesCount)
		}
		if l := a.list("/api/articles/feed", s.carol.token); len(l.Articles) != 0 || l.ArticlesCount != 0 {
			t.Errorf("carol follows nobody, feed = %+v", l)
		}
		// Following and unfollowing changes the feed at once.
		a.do("POST", "/api/profiles/"+s.bob.username+"/follow", s.carol.token, nil).want(t, 200, nil)
		if l := a.list("/api/articles/feed", s.carol.token); !slices.Equal(slugsOf(l), rev(s.bobSlugs)) {
			t.Errorf("carol's feed after follow = %v", slugsOf(l))
		} else if !l.Articles[0].Favorited || l.Articles[1].Favorited {
			t.Errorf("carol's feed favorited flags = %v, %v", l.Articles[0].Favorited, l.Articles[1].Favorited)
		}
		a.do("DELETE", "/api/profiles/"+s.bob.username+"/follow", s.carol.token, nil).want(t, 200, nil)
		if l := a.list("/api/articles/feed", s.carol.token); l.ArticlesCount != 0 {
			t.Errorf("carol's feed after unfollow = %v", slugsOf(l))
		}
	})
}

func TestFavorites(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		author := a.register("fauthor")
		fans := []user{a.register("fan"), a.register("fan"), a.register("fan")}
		art := a.createArticle(author, newArticle{Title: "Popular"})
		path := "/api/articles/" + art.Slug + "/favorite"

		fav := func(method string, u user) articleDTO {
			t.Helper()
			var got struct{ Article articleDTO }
			a.do(method, path, u.token, nil).want(t, 200, &got)
			return got.Article
		}
		for i, f := range fans {
			for range 2 { // the second favorite changes nothing
				got := fav("POST", f)
				if !got.Favorited || got.FavoritesCount != i+1 || got.Slug != art.Slug {
					t.Fatalf("fan %d favorite: favorited %v count %d, want true %d", i, got.Favorited, got.FavoritesCount, i+1)
				}
			}
		}
		if got := a.article(art.Slug, ""); got.FavoritesCount != 3 || got.Favorited {
			t.Errorf("anonymous view = count %d favorited %v", got.FavoritesCount, got.Favorited)
		}
		if got := a.article(art.Slug, author.token); got.Favorited {
			t.Error("author sees favorited without favoriting")
		}
		for range 2 {
			got := fav("DELETE", fans[0])
			if got.Favorited || got.FavoritesCount != 2 {
				t.Fatalf("unfavorite: favorited %v count %d, want false 2", got.Favorited, got.FavoritesCount)
			}
		}
		got := fav("DELETE", author) // never favorited
		if got.Favorited || got.FavoritesCount != 2 {
			t.Errorf("unfavorite without favorite: %v %d", got.Favorited, got.FavoritesCount)
		}
		if got := a.article(art.Slug, fans[1].token); !got.Favorited || got.FavoritesCount != 2 {
			t.Errorf("fan 1 view = favorited %v count %d", got.Favorited, got.FavoritesCount)
		}
		a.do("POST", "/api/articles/no-such/favorite", fans[0].token, nil).wantErrors(t, http.StatusNotFound)
		a.do("DELETE", "/api/articles/no-such/favorite", fans[0].token, nil).wantErrors(t, http.StatusNotFound)
	})
}

// A list costs the same number of database calls whatever its length, for
// a signed-in viewer who follows and favorites (the flags are where N+1
// queries usually creep in). The cache is off, so it cannot hide calls.
func TestListsHaveNoNPlusOne(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := newAPIWithCache(t, db, noCache{})
		author, viewer := a.register("prolific"), a.register("reader")
		a.do("POST", "/api/profiles/"+author.username+"/follow", viewer.token, nil).want(t, 200, nil)
		for i := range 20 {
			art := a.createArticle(author, newArticle{Title: fmt.Sprintf("Post %d", i), TagList: []string{"t1", fmt.Sprintf("n%d", i)}})
			if i%2 == 0 {
				a.do("POST", "/api/articles/"+art.Slug+"/favorite", viewer.token, nil).want(t, 200, nil)
			}
			a.do("POST", "/api/articles/"+art.Slug+"/comments", author.token, map[string]any{"comment": map[string]string{"body": "c"}}).want(t, 200, nil)
		}
		for _, path := range []string{"/api/articles", "/api/articles?tag=t1", "/api/articles?author=" + author.username,
			"/api/articles?favorited=" + viewer.username, "/api/articles/feed"} {
			for _, tok := range []string{"", viewer.token} {
				if strings.HasSuffix(path, "feed") && tok == "" {
					continue
				}
				t.Run(fmt.Sprintf("%s signed in %v", path, tok != ""), func(t *testing.T) {
					calls := func(limit int) int64 {
						sep := "?"
						if strings.Contains(path, "?") {
							sep = "&"
						}
						before := a.store.n()
						l := a.list(fmt.Sprintf("%s%slimit=%d", path, sep, limit), tok)
						if len(l.Articles) != min(limit, l.ArticlesCount) || l.ArticlesCount == 0 {
							t.Fatalf("limit %d: %d articles of %d", limit, len(l.Articles), l.ArticlesCount)
						}
						return a.store.n() - before
					}
					one, twenty := calls(1), calls(20)
					if one != twenty {
						t.Errorf("database calls: %d for 1 article, %d for 20", one, twenty)
					}
				})
			}
		}
		t.Run("comments", func(t *testing.T) {
			arts := a.list("/api/articles?limit=1", "")
			slug := arts.Articles[0].Slug
			for i := range 10 {
				u := a.register(fmt.Sprintf("c%d", i))
				a.do("POST", "/api/articles/"+slug+"/comments", u.token, map[string]any{"comment": map[string]string{"body": "more"}}).want(t, 200, nil)
			}
			few := a.list("/api/articles?limit=1&offset=1", "").Articles[0].Slug
			count := func(slug string) int64 {
				before := a.store.n()
				a.do("GET", "/api/articles/"+slug+"/comments", viewer.token, nil).want(t, 200, nil)
				return a.store.n() - before
			}
			if many, one := count(slug), count(few); many != one {
				t.Errorf("database calls: %d for 11 comments, %d for 1", many, one)
			}
		})
	})
}
