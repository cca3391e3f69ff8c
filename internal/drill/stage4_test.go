//go:build linux

package drill

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The stage-4 drill: database failover under load, through the stage-4
// runner (scripts/stage4.sh: etcd, three Patroni members with synchronous
// replication, three Conduit nodes reading from the replicas, HAProxy).
// The leader is lost (SIGKILL of its Patroni and PostgreSQL) and later
// started again as a replica; then a planned switchover.
const (
	workers4      = 4
	pause4        = 10 * time.Millisecond
	killAt4       = 10 * time.Second // lose the leader this long into the load
	restartAfter4 = 15 * time.Second // then start it again this much later
	settle4       = 6 * time.Second  // before the switchover, and after it
	// maxUnavailable is how long writes may fail per failover.
	maxUnavailable = 15 * time.Second
)

func TestDrillStage4(t *testing.T) {
	onlyInDrills(t, "stage-4 failover drill", "CONDUIT_DRILL4", "patroni, etcd, haproxy and PostgreSQL 15")
	for _, b := range []string{"patroni", "etcd", "haproxy", "psql"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is not installed (apt-get install patroni etcd-server etcd-client haproxy postgresql-15): the drill cannot run", b)
		}
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/postgres"); err != nil {
		t.Fatalf("PostgreSQL 15 server binaries missing: %v", err)
	}
	// The runner takes ports from a base up to base+43 (scripts/stage4.sh).
	// Without a base named, the first block of 50 from 25700 up whose ports
	// are all free is used, so that another run on the machine (a
	// developer's beside CI) does not fail this one.
	offsets := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43}
	free := func(base int) error {
		for _, off := range offsets {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				return err
			}
			ln.Close()
		}
		return nil
	}
	base := 0
	if v := os.Getenv("CONDUIT_DRILL4_BASE_PORT"); v != "" {
		var err error
		if base, err = strconv.Atoi(v); err != nil {
			t.Fatalf("CONDUIT_DRILL4_BASE_PORT: %v", err)
		}
		if err := free(base); err != nil {
			t.Fatalf("CONDUIT_DRILL4_BASE_PORT=%d: a port of its block is taken: %v", base, err)
		}
	} else {
		var err error
		for b := 25700; b < 25700+50*20; b += 50 {
			if err = free(b); err == nil {
				base = b
				break
			}
		}
		if base == 0 {
			t.Fatalf("no free block of 50 ports from 25700 to 26700 (set CONDUIT_DRILL4_BASE_PORT): %v", err)
		}
	}

	// The runner starts its servers detached; as a subreaper this test
	// becomes their parent once the runner exits, and reaps them at the end.
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, 36 /* PR_SET_CHILD_SUBREAPER */, 1, 0); e != 0 {
		t.Fatalf("prctl: %v", e)
	}
	dir, err := os.MkdirTemp("", "conduit-drill4-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // Patroni runs as postgres and must reach its data
	env := append(os.Environ(), "STAGE4_DIR="+dir, "BASE_PORT="+strconv.Itoa(base))
	runner := func(args ...string) (string, error) {
		cmd := exec.Command("../../scripts/stage4.sh", args...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	t.Cleanup(func() {
		if out, err := runner("stop"); err != nil {
			t.Errorf("stage4.sh stop: %v\n%s", err, out)
		}
		reapOrphans()
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	started := time.Now()
	if out, err := runner("start"); err != nil {
		t.Fatalf("stage4.sh start: %v\n%s", err, out)
	}
	t.Logf("stage 4 up in %v", time.Since(started).Round(100*time.Millisecond))
	cenv := readEnv(t, filepath.Join(dir, "cluster.env"))

	l := newLoad(cenv["LB_URL"])
	l.nodes = strings.Split(cenv["NODE_URLS"], ",")
	l.dumps = newSlowDumps(strings.Split(cenv["ADMIN_URLS"], ","), dir)
	l.setup(t)
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers4 {
		wg.Add(1)
		go func() { defer wg.Done(); l.worker4(ctx, w) }()
	}
	began := time.Now()
	var events []event
	mark := func(what string) {
		events = append(events, event{time.Now(), what})
		t.Logf("[%5.1fs] %s", time.Since(began).Seconds(), what)
	}
	sh := func(args ...string) string {
		out, err := runner(args...)
		if err != nil {
			stopLoad()
			wg.Wait()
			t.Fatalf("stage4.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(out)
	}

	time.Sleep(killAt4)
	lost := lastLine(sh("kill-leader"))
	mark("lost the leader " + lost + " (SIGKILL of Patroni and PostgreSQL)")
	failover1 := len(events) - 1
	time.Sleep(restartAfter4)
	mark("start " + lost + " again")
	mark(lastLine(sh("start-member", lost)))
	time.Sleep(settle4)
	mark("planned switchover")
	switchIdx := len(events) - 1
	mark("switched over to " + lastLine(sh("switchover")))
	time.Sleep(settle4)
	stopLoad()
	wg.Wait()
	elapsed := time.Since(began)

	present, dup := l.verify(t, cenv["DATABASE_URL"])
	gap1 := l.writeGap(events[failover1].at, events[failover1].at.Add(restartAfter4))
	gap2 := l.writeGap(events[switchIdx].at, events[switchIdx].at.Add(settle4+5*time.Second))
	longest := l.writeGap(began, began.Add(elapsed))
	r := &l.stats
	var rs []string
	for _, n := range strings.Split(cenv["ADMIN_URLS"], ",") {
		rs = append(rs, readShares(n))
	}
	summary := fmt.Sprintf(`stage-4 failover drill: %.1f s of load through HAProxy on 3 nodes, 3 Patroni members (synchronous)
  leader lost at %.1f s (%s), back as a replica at %.1f s; planned switchover at %.1f s
  requests sent:        %d (reads %d, write attempts %d incl. %d client retries)
  failed reads:         %d
  stale own-reads:      %d (of %d reads of one's own write right after it, on a node chosen in turn)
  failed writes:        %d (gave up after %v); applied but response lost: %d
  writes unavailable:   %.1f s after losing the leader, %.1f s around the switchover (longest window without a successful write: %.1f s)
  writes acknowledged:  %d of %d; acknowledged present at the end: %d
  applied twice:        %d
  responses: 409 in-flight %d, 503 %d, 502/504 %d, replayed (Idempotent-Replayed) %d
  reads per node:       %s`,
		elapsed.Seconds(), events[failover1].at.Sub(began).Seconds(), lost, events[failover1+2].at.Sub(began).Seconds(),
		events[switchIdx].at.Sub(began).Seconds(),
		r.reads.Load()+r.writeAttempts.Load(), r.reads.Load(), r.writeAttempts.Load(), r.retries.Load(),
		r.failedReads.Load(), r.staleReads.Load(), l.ownReads.Load(),
		r.failedWrites.Load(), writeTimeout, r.lost.Load(),
		gap1.Seconds(), gap2.Seconds(), longest.Seconds(),
		r.acked.Load(), r.writes.Load(), present, dup,
		r.conflicts.Load(), r.unavailable.Load(), r.gateway.Load(), r.replayed.Load(), strings.Join(rs, "; "))
	l.report(t, summary, "CONDUIT_DRILL4_REPORT", present, dup)
	if gap1 > maxUnavailable || gap2 > maxUnavailable {
		t.Errorf("writes were unavailable for %.1f s and %.1f s; want at most %v per failover", gap1.Seconds(), gap2.Seconds(), maxUnavailable)
	}
	if l.ownReads.Load() == 0 {
		t.Errorf("no write was read back on a node")
	}
}

type event struct {
	at   time.Time
	what string
}

// writeGap is the longest time within [from, to] with no write
// acknowledged, counting from the last acknowledgement before from.
func (l *load) writeGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	acks := slices.Clone(l.ackedAt)
	l.mu.Unlock()
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	prev := from
	for _, a := range acks {
		if a.Before(from) {
			prev = a
			continue
		}
		if a.After(to) {
			longest = max(longest, a.Sub(prev))
			return longest
		}
		longest = max(longest, a.Sub(prev))
		prev = a
	}
	return max(longest, to.Sub(prev))
}

// worker4 mixes reads through the balancer with writes, and after each
// acknowledged write of its own reads it back from one node, chosen in
// turn: read-your-writes on any node.
func (l *load) worker4(ctx context.Context, w int) {
	me := l.users[w]
	for n := 0; ctx.Err() == nil; n++ {
		node := l.nodes[(w+n)%len(l.nodes)]
		switch n % 6 {
		case 0:
			l.read("/api/articles?limit=10", "")
		case 1:
			l.read("/api/articles/"+me.slug, me.token)
		case 2:
			l.read("/api/articles/"+me.slug+"/comments", "")
		case 3:
			if body, ok := l.comment(me, w, n); ok {
				l.ownRead(node, "/api/articles/"+me.slug+"/comments", me.token, `"body":"`+body+`"`)
			}
		case 4:
			if n%24 == 4 {
				l.read("/api/articles/feed?limit=5", me.token)
			} else {
				l.read("/api/user", me.token)
			}
		case 5:
			if n%12 == 5 {
				bio := fmt.Sprintf("bio-w%d-%d", w, n)
				if l.write("PUT", "/api/user", me.token, "u-"+bio, fmt.Sprintf(`{"user":{"bio":%q}}`, bio), nil) {
					l.mu.Lock()
					l.ackedBio[w] = append(l.ackedBio[w], n)
					l.mu.Unlock()
					l.ownRead(node, "/api/user", me.token, `"bio":"`+bio+`"`)
				}
				break
			}
			if n%12 == 11 {
				title := fmt.Sprintf("Drill article w%d n%d", w, n)
				var slug string
				if l.write("POST", "/api/articles", me.token, "a-"+title,
					fmt.Sprintf(`{"article":{"title":%q,"description":"d","body":"b","tagList":["drill"]}}`, title),
					func(b []byte) error {
						var out struct{ Article struct{ Slug string } }
						if err := json.Unmarshal(b, &out); err != nil || out.Article.Slug == "" {
							return errors.New("no slug")
						}
						slug = out.Article.Slug
						return nil
					}) {
					l.mu.Lock()
					l.ackedA = append(l.ackedA, title)
					l.mu.Unlock()
					l.ownRead(node, "/api/articles/"+slug, me.token, `"title":"`+title+`"`)
				}
				break
			}
			l.read("/api/profiles/"+me.name, "")
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause4):
		}
	}
}

// ownRead reads path as the writer on one node, right after the write was
// acknowledged, and counts it stale unless the answer contains want.
func (l *load) ownRead(node, path, token, want string) {
	l.stats.reads.Add(1)
	l.ownReads.Add(1)
	st, b, _, err := l.doAt(node, "GET", path, token, "", "")
	switch {
	case err != nil || st != http.StatusOK:
		l.stats.failedReads.Add(1)
		l.fail("own read %s on %s: status %d err %v body %.200s", path, node, st, err, b)
	case !bytes.Contains(b, []byte(want)):
		l.stats.staleReads.Add(1)
		l.fail("stale own read on %s: %s lacks %s", node, path, want)
	}
}

// readShares summarizes where one node's database reads went (the
// /metrics of its admin listener).
func readShares(node string) string {
	resp, err := http.Get(node + "/metrics")
	if err != nil {
		return node + ": " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%s: /metrics answered %s", node, resp.Status)
	}
	var replica, primary float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch {
		case strings.HasPrefix(line, "conduit_db_replica_reads_total{"):
			replica += v
		case strings.HasPrefix(line, "conduit_db_primary_reads_total{"):
			primary += v
		}
	}
	total := replica + primary
	if total == 0 {
		return strings.TrimPrefix(node, "http://") + ": no reads"
	}
	return fmt.Sprintf("%s: %.0f%% of %.0f from replicas", strings.TrimPrefix(node, "http://"), 100*replica/total, total)
}

// readEnv parses the runner's cluster.env (KEY='value' lines).
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		env[k] = strings.Trim(v, "'")
	}
	for _, k := range []string{"LB_URL", "NODE_URLS", "ADMIN_URLS", "DATABASE_URL", "PATRONI_URLS"} {
		if env[k] == "" {
			t.Fatalf("%s: no %s", path, k)
		}
	}
	return env
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// reapOrphans waits for the exited processes re-parented to this one
// (the runner's supervisors), so none is left a zombie.
func reapOrphans() {
	for range 100 {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err != nil || pid == 0 {
			return
		}
	}
}
