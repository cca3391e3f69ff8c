package store_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Read-your-writes with the positions in Redis (stage 5): the same two
// nodes and late replica as TestReplicaReadYourWrites, and own reads stay
// fresh while Redis is gone and after it comes back empty.
func TestReplicaReadYourWritesRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL primary and replica, and redis-server")
	}
	t.Parallel() // nothing shared: its own servers and database
	primary := storetest.StartCluster(t, "synchronous_commit=on")
	replica := primary.StartReplica(fmt.Sprintf("recovery_min_apply_delay=%dms", replicaDelay.Milliseconds()))
	tokens := testKeys(t)
	rs := redistest.Start(t)
	primary.CreateDatabase("rywredis")
	const maxLag = 5 * time.Second
	a := startRYWNode(t, primary.URL("rywredis"), replica.URL("rywredis"), maxLag, tokens, rs)
	b := startRYWNode(t, primary.URL("rywredis"), replica.URL("rywredis"), maxLag, tokens, rs)

	t.Run("own writes on the other node", func(t *testing.T) {
		ownWritesOnTheOtherNode(t, a, b, maxLag)
	})
	alice, carol := b.login(t, "alice"), b.login(t, "carol")

	t.Run("redis killed", func(t *testing.T) {
		rs.Kill()
		before := b.db.ReadStats().Primary["unknown"]
		for i := range 3 {
			bio := fmt.Sprintf("no redis %d", i)
			a.must(t, 200, "PUT", "/api/user", alice, `{"user":{"bio":"`+bio+`"}}`)
			shows(t, "bio without redis", b.must(t, 200, "GET", "/api/user", alice, ""), `"bio":"`+bio+`"`)
		}
		if after := b.db.ReadStats().Primary["unknown"]; after <= before {
			t.Fatalf("no read went to the primary for unknown positions (%d before, %d after)", before, after)
		}
	})

	t.Run("redis restarted empty", func(t *testing.T) {
		rs.Start()
		a.waitRedis(t)
		b.waitRedis(t)
		// A position recorded just before the restart is lost with it: the
		// reads must not go to the late replica until a floor covers it.
		// The drill proves something only if it is done before the replica
		// has replayed the write; tried again if the machine was too slow.
		for try := 0; ; try++ {
			bio := fmt.Sprintf("before the restart %d", try)
			a.must(t, 200, "PUT", "/api/user", alice, `{"user":{"bio":"`+bio+`"}}`)
			wrote := time.Now()
			rs.Kill()
			rs.Start()
			a.waitRedis(t)
			b.waitRedis(t)
			shows(t, "bio after the restart", b.must(t, 200, "GET", "/api/user", alice, ""), `"bio":"`+bio+`"`)
			if time.Since(wrote) < replicaDelay-200*time.Millisecond {
				break
			}
			if try == 3 {
				t.Fatalf("the restart took longer than the replica's delay %v every time: the test proves nothing", replicaDelay)
			}
		}
		// And once a floor is taken, signed-in reads go to the replica
		// again: carol's, who has not written since, while alice writes
		// (so that the list is not served from the cache).
		deadline := time.Now().Add(15 * time.Second)
		for i, before := 0, b.replicaReads(); b.replicaReads() == before; i++ {
			if time.Now().After(deadline) {
				t.Fatalf("no read reached the replica after Redis came back (stats %+v)", b.db.ReadStats())
			}
			a.must(t, 201, "POST", "/api/articles", alice, fmt.Sprintf(`{"article":{"title":"After %d","description":"d","body":"b"}}`, i))
			b.must(t, 200, "GET", "/api/articles?author=alice", carol, "")
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// waitRedis waits until the node uses Redis again.
func (n *rywNode) waitRedis(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !n.redis.Usable() {
		if time.Now().After(deadline) {
			t.Fatal("the node does not use Redis again")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// login signs name in and returns the token.
func (n *rywNode) login(t *testing.T, name string) string {
	t.Helper()
	b := n.must(t, 200, "POST", "/api/users/login", "", fmt.Sprintf(`{"user":{"email":"%s@example.com","password":"password1"}}`, name))
	var out struct{ User struct{ Token string } }
	if err := json.Unmarshal([]byte(b), &out); err != nil || out.User.Token == "" {
		t.Fatalf("login %s: %s", name, b)
	}
	return out.User.Token
}
