package cache_test

import (
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
)

// slowReader forwards TCP connections to Redis and holds every byte
// Redis sends back for delay (in order): the node behind it gets the
// invalidation pushes of other nodes' writes late, as a node whose
// reader goroutine is starved does.
type slowReader struct {
	ln    net.Listener
	delay time.Duration
	wg    sync.WaitGroup
}

func startSlowReader(t *testing.T, target string, delay time.Duration) *slowReader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowReader{ln: ln, delay: delay}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer p.wg.Done(); p.late(c, s); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

type chunk struct {
	at time.Time
	b  []byte
}

// late copies from src to dst, each chunk delay after it was read.
func (p *slowReader) late(dst io.Writer, src io.Reader) {
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{time.Now(), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at.Add(p.delay)))
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

func (p *slowReader) url() string { return "redis://" + p.ln.Addr().String() + "/0" }

// Node B takes invalidation pushes off its connection 30 ms late. A
// writes; B's read that begins after A's write returned must not be
// served from B's near cache, which still holds the old value: the fence
// (a round trip whose reply follows the push) makes B wait for the push.
// Without the fence this fails on the first round.
func TestFenceNearHitsFollowWrites(t *testing.T) {
	rs := redistest.Start(t)
	proxy := startSlowReader(t, "127.0.0.1:"+strconv.Itoa(rs.Port), 30*time.Millisecond)
	a := rs.Cache(t, cache.RedisOptions{})
	b := redistest.CacheAt(t, proxy.url(), cache.RedisOptions{})
	for i := range 10 {
		old := "v" + strconv.Itoa(i)
		// Into B's near cache (the push of this SET reaches B late too:
		// read until the near cache has it; under load a node may start
		// a new generation, which the value must carry).
		deadline := time.Now().Add(10 * time.Second)
		for {
			if v, ok := b.Get(bg, "k"); !ok || string(v) != old {
				gen, err := rs.Do("GET", "conduit:gen")
				if err != nil {
					t.Fatal(err)
				}
				if gen == "$-1" {
					gen = "0"
				}
				if _, err := rs.Do("SET", "conduit:c:k", gen+":"+old); err != nil {
					t.Fatal(err)
				}
			}
			h := b.NearHits()
			v, ok := b.Get(bg, "k")
			if ok && string(v) == old && b.NearHits() > h {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: B never served %q from its near cache (last %q %v)", i, old, v, ok)
			}
			time.Sleep(time.Millisecond)
		}
		a.Delete(bg, "k") // the write is acknowledged when Delete returns
		if v, ok := b.Get(bg, "k"); ok {
			t.Fatalf("round %d: B served %q after A's write was acknowledged", i, v)
		}
	}
}

// A watched key tells this node of a change only once Redis has answered
// a read of it, at the Watch and again after every push; in between, a
// change is not pushed. Sync, which the list caches ask before using what
// the watchers keep fresh, must say no until then. Node B gets every reply
// 30 ms late, so each (re)arming read stays in flight that long.
func TestSyncWaitsForWatchedKeysToBeTracked(t *testing.T) {
	rs := redistest.Start(t)
	proxy := startSlowReader(t, "127.0.0.1:"+strconv.Itoa(rs.Port), 30*time.Millisecond)
	a := rs.Cache(t, cache.RedisOptions{})
	b := redistest.CacheAt(t, proxy.url(), cache.RedisOptions{Timeout: time.Second})
	var fired atomic.Int64
	synced := func() bool {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !b.Sync(bg) {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}
	if !synced() {
		t.Fatal("B never synced")
	}
	b.WatchPrefix("k", slices.Values([]string{"k"}), func(string) { fired.Add(1) })
	if b.Sync(bg) {
		t.Fatal("Sync said yes before Redis tracked the key just watched")
	}
	if !synced() {
		t.Fatal("B never synced after the watch")
	}
	if fired.Load() == 0 {
		t.Error("the watcher was not told once its key was tracked (what was kept before must go)")
	}
	for i := range 5 {
		n := fired.Load()
		a.Delete(bg, "k")
		deadline := time.Now().Add(10 * time.Second)
		for fired.Load() == n {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: B's watcher never heard of A's delete", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
		// The push arrived; B reads the key again to track it, which
		// takes at least 30 ms to answer.
		if b.Sync(bg) {
			t.Fatalf("round %d: Sync said yes while the key was not tracked again", i)
		}
		if !synced() {
			t.Fatalf("round %d: B never synced again", i)
		}
	}
}
