package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
)

// Pages are the browser page paths, with {tag}, {slug} and {username}
// replaced by URL-escaped values.
type Pages struct {
	Home, Tag, Article, Profile string
}

// DefaultPages are the HTML site's paths.
var DefaultPages = Pages{
	Home:    "/",
	Tag:     "/?tag={tag}",
	Article: "/article/{slug}",
	Profile: "/profile/{username}",
}

// call is one request to make.
type call struct {
	method, path string
	body         []byte
	token        string
	as           string // record under this endpoint instead (writes mix toggles)
}

// endpoint is one kind of request in the mix.
type endpoint struct {
	name   string
	weight float64
	auth   bool // needs a signed-in user
	write  bool
	make   func(w *world, r *rand.Rand, u *session) call
}

// session is a signed-in user.
type session struct {
	username, token string
	writes          *writeState // writes mix only
}

// world is what the benchmark knows of the data: discovered before the run
// and read-only during it.
type world struct {
	slugs, usernames, tags []string
	sessions               []session
	count                  int // articlesCount of the global list
	pages                  Pages
	// owned: worker k always acts as sessions[k % len(sessions)] (the
	// writes mix, which has one user per worker and tracks its state).
	owned bool
	run   string // the writes mix: this run's random id
}

// pick returns an element, skewed towards the front of the list (the
// newest articles and most active authors are read the most).
func pick[T any](r *rand.Rand, xs []T) T {
	u := r.Float64()
	return xs[int(u*u*float64(len(xs)))]
}

// offset is mostly the first page, sometimes a few pages in, rarely deep
// (up to 10,000, the goal's bound for offset paging).
func offset(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 80:
		return 0
	case x < 95:
		return 20 * (1 + r.IntN(10))
	default:
		return 20 * r.IntN(501)
	}
}

func fill(tmpl, key, value string) string {
	return strings.ReplaceAll(tmpl, "{"+key+"}", url.QueryEscape(value))
}

func get(path string) call { return call{method: "GET", path: path} }

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// endpoints returns the mix: "full" is half browser pages, half API;
// "api" is the API alone. Both are ~94% reads and ~6% writes.
// "anonymous" is the share of "full" anonymous visitors send: its pages
// and the API reads that need no user, all sent without credentials (what
// an edge cache may answer).
func endpoints(mix string) ([]endpoint, error) {
	if mix == "anonymous" {
		full, err := endpoints("full")
		return anonymousOnly(full), err
	}
	api := []endpoint{
		{name: "api list", weight: 11, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/articles?limit=20&offset=" + strconv.Itoa(min(offset(r), w.count)))
		}},
		{name: "api list by tag", weight: 9, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/articles?limit=20&tag=" + url.QueryEscape(pick(r, w.tags)))
		}},
		{name: "api list by author", weight: 6, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/articles?limit=20&author=" + url.QueryEscape(pick(r, w.usernames)))
		}},
		{name: "api list favorited", weight: 4, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/articles?limit=20&favorited=" + url.QueryEscape(pick(r, w.usernames)))
		}},
		{name: "api feed", weight: 12, auth: true, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/articles/feed?limit=20&offset=" + strconv.Itoa(min(offset(r), 200)))
		}},
		{name: "api article", weight: 18, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/articles/" + url.PathEscape(pick(r, w.slugs)))
		}},
		{name: "api comments", weight: 14, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/articles/" + url.PathEscape(pick(r, w.slugs)) + "/comments")
		}},
		{name: "api profile", weight: 8, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/profiles/" + url.PathEscape(pick(r, w.usernames)))
		}},
		{name: "api tags", weight: 6, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/tags")
		}},
		{name: "api search", weight: 3, make: func(w *world, r *rand.Rand, _ *session) call {
			// One or two words of an article's title, as people search.
			words := strings.Split(pick(r, w.slugs), "-")
			q := words[r.IntN(len(words))]
			if r.IntN(2) == 0 {
				q += " " + words[r.IntN(len(words))]
			}
			return get("/api/search?q=" + url.QueryEscape(q))
		}},
		{name: "api current user", weight: 3, auth: true, make: func(w *world, r *rand.Rand, _ *session) call {
			return get("/api/user")
		}},
		{name: "write article", weight: 1, auth: true, write: true, make: func(w *world, r *rand.Rand, u *session) call {
			n := r.Uint64()
			return call{method: "POST", path: "/api/articles", body: jsonBody(map[string]any{"article": map[string]any{
				"title":       fmt.Sprintf("Benchmark article %x", n),
				"description": "Written by conduit bench",
				"body":        strings.Repeat("A paragraph of benchmark text. ", 20),
				"tagList":     []string{pick(r, w.tags)},
			}})}
		}},
		{name: "write comment", weight: 2, auth: true, write: true, make: func(w *world, r *rand.Rand, u *session) call {
			return call{method: "POST", path: "/api/articles/" + url.PathEscape(pick(r, w.slugs)) + "/comments",
				body: jsonBody(map[string]any{"comment": map[string]any{"body": "A comment from conduit bench."}})}
		}},
		{name: "write favorite", weight: 1.5, auth: true, write: true, make: func(w *world, r *rand.Rand, u *session) call {
			return call{method: "POST", path: "/api/articles/" + url.PathEscape(pick(r, w.slugs)) + "/favorite"}
		}},
		{name: "write follow", weight: 1.5, auth: true, write: true, make: func(w *world, r *rand.Rand, u *session) call {
			name := pick(r, w.usernames)
			if name == u.username {
				name = w.usernames[r.IntN(len(w.usernames))]
			}
			if name == u.username { // following oneself is refused: view instead
				return get("/api/profiles/" + url.PathEscape(name))
			}
			return call{method: "POST", path: "/api/profiles/" + url.PathEscape(name) + "/follow"}
		}},
	}
	switch mix {
	case "api":
		return api, nil
	case "full":
	default:
		return nil, fmt.Errorf("unknown mix %q (want full, api or anonymous)", mix)
	}
	web := []endpoint{
		{name: "page home", weight: 30, make: func(w *world, r *rand.Rand, _ *session) call {
			return get(w.pages.Home)
		}},
		{name: "page tag", weight: 18, make: func(w *world, r *rand.Rand, _ *session) call {
			return get(fill(w.pages.Tag, "tag", pick(r, w.tags)))
		}},
		{name: "page article", weight: 38, make: func(w *world, r *rand.Rand, _ *session) call {
			return get(fill(w.pages.Article, "slug", pick(r, w.slugs)))
		}},
		{name: "page profile", weight: 14, make: func(w *world, r *rand.Rand, _ *session) call {
			return get(fill(w.pages.Profile, "username", pick(r, w.usernames)))
		}},
	}
	// Half the traffic from browsers (pages are anonymous views), half
	// from apps: each part's weights sum to 100.
	return append(web, api...), nil
}
