package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// On shutdown, Run fails /readyz at once, keeps serving new requests for the
// drain delay, lets an in-flight request finish, then returns nil.
func TestRunDrainsGracefully(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	web := http.NewServeMux()
	web.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "slow done")
	})
	s := New(Deps{API: http.NotFoundHandler(), Web: web, DB: &pinger{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry()})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const drain = time.Second
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, drain, 10*time.Second) }()

	status := func(path string) int {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := c.Get(base + path)
		if err != nil {
			return -1
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := status("/readyz"); got != 200 {
		t.Fatalf("readyz while running = %d", got)
	}

	slow := make(chan string, 1)
	go func() {
		res, err := http.Get(base + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		slow <- string(b)
	}()
	<-entered

	stopAt := time.Now()
	cancel()
	time.Sleep(50 * time.Millisecond)
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining = %d, want 503", got)
	}
	if got := status("/healthz"); got != 200 {
		t.Errorf("healthz while draining = %d, want 200", got)
	}
	if time.Since(stopAt) >= drain {
		t.Fatal("the machine is too slow for this test's drain delay")
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned during the drain with an in-flight request: %v", err)
	case <-time.After(drain + 200*time.Millisecond):
	}
	// After the drain the listener is closed: no new connections.
	if got := status("/healthz"); got != -1 {
		t.Errorf("new request after the drain got %d, want a refused connection", got)
	}
	close(release)
	if got := <-slow; got != "slow done" {
		t.Errorf("in-flight request = %q", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the last request finished")
	}
}
