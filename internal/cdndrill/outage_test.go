//go:build linux

package cdndrill

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/testproc"
)

// Timeline of the outage drill: answers live maxAge at the edge, then
// 30 s more while Conduit is healthy (stale-while-revalidate). The nodes
// stay down past both, so what is served at the end is served only because
// of stale-if-error (a day).
const (
	outageMaxAge = 2 * time.Second
	outageFor    = 40 * time.Second // > maxAge + 30 s
)

// TestAllNodesDown kills every Conduit node: anonymous readers keep
// getting the pages the edge holds, also past their freshness and the
// stale-while-revalidate window, while pages it never held are 503; when
// the nodes are back, new writes show again.
func TestAllNodesDown(t *testing.T) {
	gate(t)
	db := databases(t)[len(databases(t))-1] // the cluster when PostgreSQL is there
	c := newCluster(t, db, nodesFor(db), outageMaxAge.String())
	alice := c.signUp(t, "alice")
	slug := c.publish(t, alice, "Survives the outage", "outage")
	edge := c.edge.URL
	pages := []string{"/", "/?tag=outage", "/article/" + slug, "/profile/alice", "/api/articles", "/api/articles/" + slug,
		"/api/tags", "/login"}
	for _, p := range pages {
		if r := do(t, "GET", edge+p, nil); r.status != 200 {
			t.Fatalf("warming %s: %d", p, r.status)
		}
	}
	warmed := time.Now()

	for _, n := range c.nodes {
		n.Kill()
	}
	deadline := time.Now().Add(15 * time.Second)
	for c.edge.Healthy(t) {
		if time.Now().After(deadline) {
			t.Fatal("Varnish still thinks Conduit is healthy 15 s after every node died")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every node down; Varnish marked the backend sick %.1f s after warming", time.Since(warmed).Seconds())

	served, staleLate := 0, 0
	for time.Since(warmed) < outageFor {
		for _, p := range pages {
			r := do(t, "GET", edge+p, nil)
			if r.status != 200 {
				t.Fatalf("%.0f s into the outage %s answered %d (%s)", time.Since(warmed).Seconds(), p, r.status, cacheState(r))
			}
			served++
			if strings.HasPrefix(cacheState(r), "HIT-STALE") && time.Since(warmed) > outageMaxAge+31*time.Second {
				staleLate++
			}
		}
		if r := do(t, "GET", edge+"/profile/nobody-cached-this", nil); r.status != http.StatusServiceUnavailable {
			t.Errorf("a page the edge never held answered %d during the outage", r.status)
		}
		time.Sleep(2 * time.Second)
	}
	if staleLate == 0 {
		t.Error("no stale answer was served past maxAge + stale-while-revalidate: the outage was not covered by stale-if-error")
	}
	t.Logf("%d anonymous reads answered 200 during %v with no node up (%d of them past s-maxage + stale-while-revalidate)",
		served, outageFor, staleLate)

	for i := range c.nodes {
		c.startNode(i)
	}
	for _, p := range c.ports {
		testproc.WaitHTTP(t, "http://127.0.0.1:"+strconv.Itoa(p)+"/readyz", 30*time.Second)
	}
	deadline = time.Now().Add(15 * time.Second)
	for !c.edge.Healthy(t) {
		if time.Now().After(deadline) {
			t.Fatal("Varnish did not see Conduit come back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.publish(t, alice, "After the outage", "outage")
	if d := visibleWithin(t, edge+"/?tag=outage", "After the outage"); d > purgeBound {
		t.Errorf("after the outage a new article took %v to show", d)
	}
}
