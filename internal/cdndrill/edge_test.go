//go:build linux

package cdndrill

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/conduit-dev/conduit/internal/storetest"
)

// purgeBound is the stated bound (docs/stage6.md) on how long after a
// write is acknowledged an anonymous reader at the edge may still get the
// old answer, while the edge is reachable: the purge is sent at once, and
// once more after 2 s.
const purgeBound = 3 * time.Second

// databases are the backends to run on: SQLite always, PostgreSQL when
// configured (required with CI=true).
func databases(t *testing.T) []string {
	dbs := []string{"sqlite"}
	if storetest.PostgresURL(t) != "" {
		dbs = append(dbs, "postgres")
	}
	return dbs
}

func nodesFor(db string) int {
	if db == "postgres" {
		return 2
	}
	return 1
}

func TestEdge(t *testing.T) {
	gate(t)
	for _, db := range databases(t) {
		t.Run(db, func(t *testing.T) {
			c := newCluster(t, db, nodesFor(db), "60s")
			alice, bob := c.signUp(t, "alice"), c.signUp(t, "bob")
			slug := c.publish(t, alice, "First light", "edgetag")
			// The publish's purges (and their repeats) come asynchronously:
			// one landing between two reads would look like a miss.
			c.purgesSettled(t)
			t.Run("shared and personal answers", func(t *testing.T) { sharedAndPersonal(t, c, alice) })
			t.Run("purge on write", func(t *testing.T) { purgeOnWrite(t, c, alice, bob, slug) })
			t.Run("conditional requests", func(t *testing.T) { conditional(t, c, alice, bob, slug) })
			t.Run("one copy per coding", func(t *testing.T) {
				c.purgesSettled(t) // conditional's last publish: its purges and repeats
				onePerCoding(t, c)
			})
		})
	}
}

func cacheState(r reply) string { return r.header.Get("X-Cache") }

func sharedAndPersonal(t *testing.T, c *cluster, alice user) {
	edge := c.edge.URL
	session := "conduit_session=" + alice.token
	for _, path := range []string{"/", "/api/articles", "/api/tags", "/profile/alice"} {
		first, second := do(t, "GET", edge+path, nil), do(t, "GET", edge+path, nil)
		if first.status != 200 || second.status != 200 || cacheState(second) != "HIT" {
			t.Errorf("anonymous %s: %d %s then %d %s; want a hit the second time", path,
				first.status, cacheState(first), second.status, cacheState(second))
		}
		if k := second.header.Get("Surrogate-Key"); k != "" {
			t.Errorf("%s: edge keys reached the client: %q", path, k)
		}
		// Cookies of other parties are dropped: still the shared copy.
		if r := do(t, "GET", edge+path, nil, "Cookie", "_ga=GA1.2.3; theme=dark"); cacheState(r) != "HIT" {
			t.Errorf("%s with foreign cookies: %s", path, cacheState(r))
		}
	}
	// Signed in: passed every time, never stored, never shown to others.
	for range 2 {
		r := do(t, "GET", edge+"/", nil, "Cookie", "_ga=1; "+session)
		if cacheState(r) != "PASS" || !strings.Contains(r.body, `href="/settings"`) || !strings.Contains(r.header.Get("Cache-Control"), "private") {
			t.Errorf("signed-in page: %s, Cache-Control %q, shows the user's navigation: %v",
				cacheState(r), r.header.Get("Cache-Control"), strings.Contains(r.body, `href="/settings"`))
		}
		a := do(t, "GET", edge+"/api/articles", nil, "Authorization", "Token "+alice.token)
		if cacheState(a) != "PASS" || a.header.Get("Cache-Control") != "private, no-cache" {
			t.Errorf("signed-in API read: %s, Cache-Control %q", cacheState(a), a.header.Get("Cache-Control"))
		}
	}
	if r := do(t, "GET", edge+"/", nil); strings.Contains(r.body, `href="/settings"`) {
		t.Error("an anonymous visitor got a signed-in page")
	}
	// Answers that carry credentials are never kept.
	if r := do(t, "GET", edge+"/api/user", nil, "Authorization", "Token "+alice.token); r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /api/user: Cache-Control %q", r.header.Get("Cache-Control"))
	}
}

// visibleWithin polls url anonymously through the edge until its body
// contains want, and returns how long that took.
func visibleWithin(t *testing.T, url, want string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := do(t, "GET", url, nil)
		if r.status == 200 && strings.Contains(r.body, want) {
			return time.Since(start)
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%s never showed %q (last: %d %s)", url, want, r.status, cacheState(r))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// warm makes sure the edge holds urls (a hit on the second read).
func warm(t *testing.T, urls ...string) {
	t.Helper()
	for _, u := range urls {
		do(t, "GET", u, nil)
		if r := do(t, "GET", u, nil); r.status != 200 || cacheState(r) != "HIT" {
			t.Fatalf("%s not cached: %d %s", u, r.status, cacheState(r))
		}
	}
}

func purgeOnWrite(t *testing.T, c *cluster, alice, bob user, slug string) {
	edge := c.edge.URL
	var worst time.Duration
	check := func(what, url, want string) {
		t.Helper()
		d := visibleWithin(t, url, want)
		t.Logf("%-45s visible at the edge %v after the write was acknowledged", what+" ("+strings.TrimPrefix(url, edge)+")", d)
		worst = max(worst, d)
		if d > purgeBound {
			t.Errorf("%s: stale for %v at %s, bound %v", what, d, url, purgeBound)
		}
	}

	lists := []string{edge + "/", edge + "/?tag=edgetag", edge + "/api/articles", edge + "/api/articles?tag=edgetag",
		edge + "/profile/alice", edge + "/api/articles?author=alice", edge + "/api/tags"}
	warm(t, lists...)
	c.publish(t, alice, "Second light", "edgetag", "newtag")
	for _, u := range lists[:6] {
		check("new article", u, "Second light")
	}
	check("new tag", lists[6], "newtag")

	art, comments := edge+"/api/articles/"+slug, edge+"/api/articles/"+slug+"/comments"
	page, favs := edge+"/article/"+slug, edge+"/api/articles?favorited=bob"
	warm(t, art, comments, page, favs)
	c.api(t, bob, "POST", "/api/articles/"+slug+"/favorite", nil, 200)
	check("favorite count", art, `"favoritesCount":1`)
	check("favorited-by list", favs, slug)
	c.api(t, bob, "POST", "/api/articles/"+slug+"/comments", map[string]any{"comment": map[string]string{"body": "Seen from the edge"}}, 200)
	check("new comment", comments, "Seen from the edge")
	check("new comment on the page", page, "Seen from the edge")

	warm(t, edge+"/api/profiles/alice", edge+"/profile/alice", art)
	c.api(t, alice, "PUT", "/api/user", map[string]any{"user": map[string]string{"bio": "Writes at the edge"}}, 200)
	check("new bio", edge+"/api/profiles/alice", "Writes at the edge")
	check("new bio on the profile page", edge+"/profile/alice", "Writes at the edge")
	check("new bio in the article", art, "Writes at the edge")
	t.Logf("worst: %v (bound %v)", worst, purgeBound)
}

func conditional(t *testing.T, c *cluster, alice, bob user, slug string) {
	edge := c.edge.URL
	for _, path := range []string{"/article/" + slug, "/api/articles/" + slug, "/?tag=edgetag"} {
		first := do(t, "GET", edge+path, nil)
		etag := first.header.Get("ETag")
		if first.status != 200 || etag == "" {
			t.Fatalf("%s: %d, ETag %q", path, first.status, etag)
		}
		again := do(t, "GET", edge+path, nil, "If-None-Match", etag)
		if again.status != http.StatusNotModified || again.body != "" || again.header.Get("ETag") != etag {
			t.Errorf("%s with If-None-Match: %d %s, %d bytes", path, again.status, cacheState(again), len(again.body))
		}
		if other := do(t, "GET", edge+path, nil, "If-None-Match", `"old"`); other.status != 200 {
			t.Errorf("%s with an old ETag: %d", path, other.status)
		}
	}

	// A phone re-polling its (private) feed gets 304s until it changes.
	c.api(t, bob, "POST", "/api/profiles/alice/follow", nil, 200)
	feed := c.api(t, bob, "GET", "/api/articles/feed", nil, 200)
	etag := feed.header.Get("ETag")
	if etag == "" || feed.header.Get("Cache-Control") != "private, no-cache" {
		t.Fatalf("feed: ETag %q, Cache-Control %q", etag, feed.header.Get("Cache-Control"))
	}
	for range 3 {
		r := do(t, "GET", edge+"/api/articles/feed", nil, "Authorization", "Token "+bob.token, "If-None-Match", etag)
		if r.status != http.StatusNotModified || cacheState(r) != "PASS" {
			t.Errorf("feed re-poll: %d %s", r.status, cacheState(r))
		}
	}
	c.publish(t, alice, "Third light")
	// The article reaches bob's home timeline through a background job
	// (stage 7, docs/stage7.md): the feed stays 304 until then, and is a new
	// body with a new ETag from then on.
	deadline := time.Now().Add(feedLagBound)
	for {
		r := do(t, "GET", edge+"/api/articles/feed", nil, "Authorization", "Token "+bob.token, "If-None-Match", etag)
		if r.status == 200 {
			if r.header.Get("ETag") == etag || !strings.Contains(r.body, "Third light") {
				t.Errorf("feed after a new article: %d, ETag %q (was %q)", r.status, r.header.Get("ETag"), etag)
			}
			break
		}
		if r.status != http.StatusNotModified || time.Now().After(deadline) {
			t.Errorf("feed after a new article: still %d after %s, ETag %q", r.status, feedLagBound, r.header.Get("ETag"))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// feedLagBound is how long a follower's feed may take to show a new
// article: the fan-out job runs on a worker of one of the nodes.
const feedLagBound = 15 * time.Second

func onePerCoding(t *testing.T, c *cluster) {
	url := c.edge.URL + "/?tag=edgetag&page=1"
	spellings := []struct{ ae, want string }{
		{"gzip, deflate, br", "gzip"}, {"br, gzip", "gzip"}, {"gzip;q=1.0, identity; q=0.5", "gzip"},
		{"gzip, deflate, br, zstd", "zstd"}, {"zstd", "zstd"}, {"zstd, gzip", "zstd"}, {"gzip, zstd;q=0", "gzip"},
		{"", ""}, {"br", ""}, {"identity", ""}, {"deflate", ""},
	}
	zd, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zd.Close()
	var plain string
	misses := 0
	for _, s := range spellings {
		r := do(t, "GET", url, nil, "Accept-Encoding", s.ae)
		if r.header.Get("Content-Encoding") != s.want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", s.ae, r.header.Get("Content-Encoding"), s.want)
			continue
		}
		body := []byte(r.body)
		switch s.want {
		case "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(zr)
		case "zstd":
			if body, err = zd.DecodeAll(body, nil); err != nil {
				t.Fatal(err)
			}
		}
		if plain == "" {
			plain = string(body)
		} else if string(body) != plain {
			t.Errorf("Accept-Encoding %q: another page", s.ae)
		}
		if cacheState(r) == "MISS" {
			misses++
		}
	}
	if misses != 3 {
		t.Errorf("%d misses for %d spellings of Accept-Encoding: want one per coding (3)", misses, len(spellings))
	}
	if len(plain) < 1024 {
		t.Errorf("page of %d bytes: too small to be compressed, the test proves nothing", len(plain))
	}
}
