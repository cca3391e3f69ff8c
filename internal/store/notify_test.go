package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// heard collects what a Listen hears.
type heard struct {
	mu       sync.Mutex
	payloads []string
	up       chan struct{}
}

func (h *heard) OnConnect() {
	select {
	case h.up <- struct{}{}:
	default:
	}
}
func (h *heard) OnDisconnect() {}
func (h *heard) OnNotification(p string) {
	h.mu.Lock()
	h.payloads = append(h.payloads, p)
	h.mu.Unlock()
}

// Concurrent Notify calls go together (noticeBatch) yet each returns only
// once its own notice is sent, every notice arrives, and each caller's
// arrive in the order it sent them.
func TestNotifyConcurrent(t *testing.T) {
	url := storetest.NewMigratedPostgresDatabase(t)
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := &heard{up: make(chan struct{}, 1)}
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = db.Listen(lctx, "notify_test", h, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	select {
	case <-h.up:
	case <-time.After(20 * time.Second):
		t.Fatal("never listening")
	}

	const senders, each = 40, 5
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := db.Notify(ctx, "notify_test", fmt.Sprintf("%d %d", s, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		n := len(h.payloads)
		h.mu.Unlock()
		if n >= senders*each || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.payloads) != senders*each {
		t.Fatalf("heard %d notices, want %d", len(h.payloads), senders*each)
	}
	next := map[int]int{}
	for _, p := range h.payloads {
		var s, i int
		if _, err := fmt.Sscanf(p, "%d %d", &s, &i); err != nil {
			t.Fatalf("payload %q", p)
		}
		if i != next[s] {
			t.Fatalf("sender %d: notice %d arrived when %d was due (%s)", s, i, next[s], strings.Join(h.payloads, ", "))
		}
		next[s]++
	}

	if err := db.Notify(ctx, "notify_test", strings.Repeat("x", store.MaxNotifyPayload+1)); err == nil {
		t.Error("a payload over the limit was accepted")
	}
}

// heardLive is a heard that is also told of its listener's beats, and
// adds its name to them.
type heardLive struct {
	heard
	name   string
	mu     sync.Mutex
	beats  []time.Time
	others []string // what other subscribers added to their beats
}

func (h *heardLive) OnLive(sent time.Time) {
	h.mu.Lock()
	h.beats = append(h.beats, sent)
	h.mu.Unlock()
}

func (h *heardLive) Beat() string { return h.name + " grants x=1" }

func (h *heardLive) OnBeat(payload string) {
	h.mu.Lock()
	h.others = append(h.others, payload)
	h.mu.Unlock()
}

// A listener whose subscriber wants beats sends itself some several times
// a second and reports each own one that comes back, with the time it was
// sent, and passes on what the other beating subscribers added to theirs
// (OnBeat), never its own; no beat, its own or another listener's,
// reaches OnNotification of any subscriber, and ordinary notices still
// arrive.
func TestListenBeats(t *testing.T) {
	url := storetest.NewMigratedPostgresDatabase(t)
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	a := &heardLive{heard: heard{up: make(chan struct{}, 1)}, name: "a"}
	b := &heardLive{heard: heard{up: make(chan struct{}, 1)}, name: "b"}
	plain := &heard{up: make(chan struct{}, 1)}
	start := time.Now()
	for _, s := range []store.Subscriber{a, b, plain} {
		go func() { _ = db.Listen(lctx, "beat_test", s, logger) }()
	}
	for _, up := range []chan struct{}{a.up, b.up, plain.up} {
		select {
		case <-up:
		case <-time.After(20 * time.Second):
			t.Fatal("never listening")
		}
	}
	beats := func(h *heardLive) []time.Time {
		h.mu.Lock()
		defer h.mu.Unlock()
		return append([]time.Time(nil), h.beats...)
	}
	deadline := time.Now().Add(20 * time.Second)
	for (len(beats(a)) < 3 || len(beats(b)) < 3) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := db.Notify(ctx, "beat_test", "hello"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*heardLive{a, b} {
		bs := beats(h)
		if len(bs) < 3 {
			t.Fatalf("%d beats came back in 20 s", len(bs))
		}
		for i, sent := range bs {
			if sent.Before(start) || sent.After(time.Now()) || (i > 0 && !sent.After(bs[i-1])) {
				t.Errorf("beat %d sent at %v: not between the start and now, after the one before", i, sent)
			}
		}
	}
	for _, h := range []*heardLive{a, b} {
		other := "b grants x=1"
		if h == b {
			other = "a grants x=1"
		}
		h.mu.Lock()
		others := slices.Clone(h.others)
		h.mu.Unlock()
		if len(others) == 0 {
			t.Errorf("%s heard no other beat", h.name)
		}
		for _, o := range others {
			if o != other {
				t.Errorf("%s: OnBeat(%q), want only %q", h.name, o, other)
			}
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for _, h := range []*heard{&a.heard, &b.heard, plain} {
		for {
			h.mu.Lock()
			got := slices.Clone(h.payloads)
			h.mu.Unlock()
			if slices.Contains(got, "hello") || time.Now().After(deadline) {
				if !slices.Equal(got, []string{"hello"}) {
					t.Errorf("OnNotification heard %q, want only the notice", got)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
