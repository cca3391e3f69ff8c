package main

import (
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache/redistest"
)

// With --cache-url, reads are served through Redis and the near cache,
// and the metrics show both tiers and the breaker.
func TestServeWithRedisCache(t *testing.T) {
	rs := redistest.Start(t)
	base, logs := serveInProcess(t, "--cache-url", rs.URL(), "--cache-timeout", "1s", "--admin-addr", "127.0.0.1:0")
	c := newClient(t, base)
	admin := newClient(t, "http://"+listenerAddr(t, logs.String(), "admin listener"))
	c.register("cached")
	var art articleOut
	c.call("POST", "/api/articles", map[string]any{"article": map[string]any{"title": "Shared", "description": "d", "body": "b"}}, &art)
	deadline := time.Now().Add(10 * time.Second)
	var metrics string
	for {
		c.call("GET", "/api/articles/"+art.Article.Slug, nil, nil)
		_, metrics = admin.get("/metrics")
		if metricValue(metrics, `conduit_cache_tier_lookups_total{kind="article",result="hit",tier="near"}`) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no near-cache hit for the article after repeated reads:\n%s", grepLines(metrics, "conduit_cache"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`conduit_cache_hits_total{cache="redis"}`,
		`conduit_cache_circuit_open 0`,
		`conduit_cache_redis_call_seconds_count{op="get"}`,
		`conduit_cache_loads_total{how="lease",kind="article"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if n, _ := rs.Do("DBSIZE"); n == ":0" {
		t.Error("nothing was stored in Redis")
	}
}

// A Redis that cannot be reached costs nothing but speed: every request
// is answered from the database.
func TestServeWithUnreachableRedis(t *testing.T) {
	base, logs := serveInProcess(t, "--cache-url", "redis://127.0.0.1:1/0", "--admin-addr", "127.0.0.1:0")
	c := newClient(t, base)
	admin := newClient(t, "http://"+listenerAddr(t, logs.String(), "admin listener"))
	c.register("nocache")
	var art articleOut
	if st := c.call("POST", "/api/articles", map[string]any{"article": map[string]any{"title": "Direct", "description": "d", "body": "v1"}}, &art); st != 201 {
		t.Fatalf("create = %d", st)
	}
	if st := c.call("PUT", "/api/articles/"+art.Article.Slug, map[string]any{"article": map[string]any{"body": "v2"}}, &art); st != 200 {
		t.Fatalf("update = %d", st)
	}
	for range 3 {
		if st := c.call("GET", "/api/articles/"+art.Article.Slug, nil, &art); st != 200 || art.Article.Body != "v2" {
			t.Fatalf("read = %d %q", st, art.Article.Body)
		}
	}
	if _, metrics := admin.get("/metrics"); !strings.Contains(metrics, "conduit_cache_circuit_open 1") {
		t.Errorf("the breaker is not reported open:\n%s", grepLines(metrics, "conduit_cache"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
