package cache_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
)

// tokenOf runs a request on n that signs in and returns its token.
func tokenOf(t *testing.T, n *node, method, path, token, body string) string {
	t.Helper()
	st, b := call(t, n, method, path, token, body)
	var u struct{ User struct{ Token string } }
	if st >= 300 || json.Unmarshal([]byte(b), &u) != nil || u.User.Token == "" {
		t.Fatalf("no token: %d %s", st, b)
	}
	return u.User.Token
}

// A token revoked through node A is refused by node B on the very next
// request, although B had checked it against its cached account a moment
// before: A answers the revocation only after B acknowledged the
// invalidation.
func TestRevocationAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b := startPeers(t)
	// checkedFromCacheOnB uses token on B until B checks it from its cache.
	checkedFromCacheOnB := func(token string) {
		t.Helper()
		time.Sleep(hold + 10*time.Millisecond)
		if st, body := call(t, b, "GET", "/api/user", token, ""); st != 200 {
			t.Fatalf("B refused a good token: %d %s", st, body)
		}
		h0, _ := b.mem.Stats()
		call(t, b, "GET", "/api/user", token, "")
		if h1, _ := b.mem.Stats(); h1 == h0 {
			t.Fatal("B did not check the token from its cache: the test would prove nothing")
		}
	}

	first := tokenOf(t, a, "POST", "/api/users", "", `{"user":{"username":"rita","email":"rita@example.com","password":"password1"}}`)
	checkedFromCacheOnB(first)
	second := tokenOf(t, a, "PUT", "/api/user", first, `{"user":{"password":"password2"}}`)
	if st, _ := call(t, b, "GET", "/api/user", first, ""); st != 401 {
		t.Fatalf("B accepted a token right after A revoked it by a password change: %d", st)
	}
	checkedFromCacheOnB(second)
	if st, body := call(t, a, "POST", "/api/user/logout", second, ""); st != 204 {
		t.Fatalf("sign out via A: %d %s", st, body)
	}
	if st, _ := call(t, b, "GET", "/api/user", second, ""); st != 401 {
		t.Fatalf("B accepted a token right after A signed it out: %d", st)
	}
	third := tokenOf(t, a, "POST", "/api/users/login", "", `{"user":{"email":"rita@example.com","password":"password2"}}`)
	checkedFromCacheOnB(third)
	if st, body := call(t, a, "POST", "/api/user/logout-all", third, ""); st != 204 {
		t.Fatalf("sign out everywhere via A: %d %s", st, body)
	}
	if st, _ := call(t, b, "GET", "/api/user", third, ""); st != 401 {
		t.Fatalf("B accepted a token right after A signed out everywhere: %d", st)
	}
}

// Revocation with the Redis cache: the account record (token generation
// and revoked token ids) is a tracked key per user, so a check is a near-
// cache hit until a revocation changes it. A token revoked through A is
// refused by B on the next request, and stays refused while Redis is down
// and after it restarts empty: the database holds the revocation, Redis
// only a copy of it.
func TestRedisRevocationAcrossNodes(t *testing.T) {
	rs := redistest.Start(t)
	ns := startRedisNodes(t, 2, rs, cache.RedisOptions{})
	a, b := &node{srv: ns[0].srv}, &node{srv: ns[1].srv}
	// checkedFromNearCacheOnB uses token on B until B checks it from its
	// near cache.
	checkedFromNearCacheOnB := func(token string) {
		t.Helper()
		for range 5 {
			h := ns[1].cache.NearHits()
			if st, body := call(t, b, "GET", "/api/user", token, ""); st != 200 {
				t.Fatalf("B refused a good token: %d %s", st, body)
			}
			if ns[1].cache.NearHits() > h {
				return
			}
		}
		t.Fatal("B did not check the token from its near cache: the test would prove nothing")
	}
	refusedOnB := func(token, what string) {
		t.Helper()
		if st, _ := call(t, b, "GET", "/api/user", token, ""); st != 401 {
			t.Fatalf("B accepted a token %s: %d", what, st)
		}
	}

	first := tokenOf(t, a, "POST", "/api/users", "", `{"user":{"username":"rosa","email":"rosa@example.com","password":"password1"}}`)
	checkedFromNearCacheOnB(first)
	second := tokenOf(t, a, "PUT", "/api/user", first, `{"user":{"password":"password2"}}`)
	refusedOnB(first, "right after A revoked it by a password change")
	checkedFromNearCacheOnB(second)
	if st, body := call(t, a, "POST", "/api/user/logout", second, ""); st != 204 {
		t.Fatalf("sign out via A: %d %s", st, body)
	}
	refusedOnB(second, "right after A signed it out")

	rs.Kill()
	refusedOnB(second, "signed out, with Redis down")
	refusedOnB(first, "revoked, with Redis down")
	rs.Start()
	deadline := time.Now().Add(10 * time.Second)
	for !ns[1].cache.Usable() {
		if time.Now().After(deadline) {
			t.Fatal("B did not use the cache again after Redis restarted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 3 { // into Redis and B's near cache again
		refusedOnB(second, "signed out, after Redis restarted empty")
		refusedOnB(first, "revoked, after Redis restarted empty")
	}
	third := tokenOf(t, a, "POST", "/api/users/login", "", `{"user":{"email":"rosa@example.com","password":"password2"}}`)
	checkedFromNearCacheOnB(third)
}
