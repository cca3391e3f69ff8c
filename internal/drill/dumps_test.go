package drill

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowAfter is how long a drill request runs before the nodes'
// goroutines are taken: well past a healthy request, well before the
// client gives up (10 s), so that a failure comes with where it waited.
const slowAfter = 5 * time.Second

// slowDumps takes the goroutines of every node (/debug/pprof/goroutine on
// its admin listener, which serves the profiles when --debug-addr is the
// same address) while a request is slow, at most once a second, into dir.
type slowDumps struct {
	admins []string
	dir    string
	client http.Client

	mu    sync.Mutex
	last  time.Time
	files []string
}

func newSlowDumps(admins []string, dir string) *slowDumps {
	return &slowDumps{admins: admins, dir: dir, client: http.Client{Timeout: 3 * time.Second}}
}

func (d *slowDumps) take() {
	d.mu.Lock()
	now := time.Now()
	if now.Sub(d.last) < time.Second {
		d.mu.Unlock()
		return
	}
	d.last = now
	d.mu.Unlock()
	for i, admin := range d.admins {
		resp, err := d.client.Get(admin + "/debug/pprof/goroutine?debug=2")
		if err != nil {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			continue
		}
		name := filepath.Join(d.dir, fmt.Sprintf("goroutines-%s-node%d.txt", now.Format("150405.000"), i+1))
		if os.WriteFile(name, b, 0o644) == nil {
			d.mu.Lock()
			d.files = append(d.files, name)
			d.mu.Unlock()
		}
	}
}

// report logs, for the first dumps taken, each node's request handlers
// that were waiting, as the chain of this repository's functions they
// were in (the rest is in the files, kept with the logs).
func (d *slowDumps) report(t *testing.T) {
	d.mu.Lock()
	files := append([]string(nil), d.files...)
	d.mu.Unlock()
	if len(files) == 0 {
		t.Log("no request ran past", slowAfter, "(no goroutine dumps)")
		return
	}
	t.Logf("%d goroutine dumps of the nodes taken while requests ran past %v, in %s; the first:", len(files), slowAfter, d.dir)
	for _, f := range files[:min(len(files), len(d.admins))] {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, chain := range waitingHandlers(b) {
			t.Logf("  %s: %s", filepath.Base(f), chain)
		}
	}
}

// waitingHandlers condenses a goroutine dump (debug=2) to the goroutines
// serving a request: the state, the innermost call outside this
// repository, and this repository's functions from the inside out.
func waitingHandlers(dump []byte) []string {
	var out []string
	for _, g := range bytes.Split(dump, []byte("\n\n")) {
		lines := strings.Split(string(g), "\n")
		if len(lines) < 2 || !strings.Contains(string(g), "net/http.(*conn).serve") || strings.Contains(string(g), "net/http/pprof") {
			continue
		}
		state := strings.TrimSuffix(strings.TrimPrefix(lines[0], "goroutine "), ":")
		var inner string
		var ours []string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || l == "" {
				continue // file:line
			}
			fn := l[:max(0, strings.LastIndex(l, "("))]
			if !strings.Contains(fn, "conduit-dev/conduit/") {
				if inner == "" && len(ours) == 0 {
					inner = fn
				}
				continue
			}
			fn = fn[strings.Index(fn, "conduit-dev/conduit/")+len("conduit-dev/conduit/"):]
			if len(ours) == 0 || ours[len(ours)-1] != fn {
				ours = append(ours, fn)
			}
		}
		if len(ours) > 0 {
			out = append(out, state+" in "+inner+" <- "+strings.Join(ours[:min(len(ours), 8)], " <- "))
		}
	}
	return out
}

func TestWaitingHandlers(t *testing.T) {
	dump := `goroutine 7 [select]:
github.com/jackc/puddle/v2.(*Pool[...]).acquire(0x1, {0x2})
	/x/puddle/pool.go:397 +0x1f9
github.com/conduit-dev/conduit/internal/store.(*replicaSet).query(0x3)
	/x/internal/store/replicas.go:560 +0x1
github.com/conduit-dev/conduit/internal/store.(*DB).query(0x4)
	/x/internal/store/store.go:216 +0x1
github.com/conduit-dev/conduit/internal/api.New.(*handler).authenticate.func23({0x5}, 0x6)
	/x/internal/api/api.go:1 +0x1
net/http.(*conn).serve(0x7, {0x8})
	/go/src/net/http/server.go:2100 +0x1

goroutine 8 [IO wait]:
internal/poll.runtime_pollWait(0x1, 0x72)
	/go/src/runtime/netpoll.go:351 +0x85
net/http.(*conn).serve(0x7, {0x8})
	/go/src/net/http/server.go:2100 +0x1

goroutine 9 [running]:
net/http/pprof.handler.ServeHTTP({0x1})
	/go/src/net/http/pprof/pprof.go:1 +0x1
github.com/conduit-dev/conduit/internal/server.New.Log.func4.1({0x1})
	/x/internal/server/server.go:1 +0x1
net/http.(*conn).serve(0x7, {0x8})
	/go/src/net/http/server.go:2100 +0x1
`
	got := waitingHandlers([]byte(dump))
	want := []string{"7 [select] in github.com/jackc/puddle/v2.(*Pool[...]).acquire <- internal/store.(*replicaSet).query <- internal/store.(*DB).query <- internal/api.New.(*handler).authenticate.func23"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("waitingHandlers:\n got %q\nwant %q", got, want)
	}
}
