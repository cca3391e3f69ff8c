package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/httpx"
)

type okPinger struct{}

func (okPinger) Ping(context.Context) error { return nil }

// With every slot taken, API requests and pages are shed, each answered by
// its own surface's error writer, but the load balancer's checks still get
// through, and the shed requests are counted.
func TestOverloadSparesOperationalEndpoints(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	held := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	pageError := func(w http.ResponseWriter, r *http.Request, err error) {
		status, msg := httpx.Status(err)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		io.WriteString(w, "<p>site error page: "+msg)
	}
	reg := prometheus.NewRegistry()
	s := New(Deps{API: held, APIError: api.WriteError, Web: held, WebError: pageError,
		DB: okPinger{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: reg, Limit: httpx.LimitOptions{MaxInFlight: 1, MaxWait: time.Millisecond}})
	s.MarkReady()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	defer close(release)

	go func() {
		if resp, err := http.Get(srv.URL + "/api/articles"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	for _, c := range []struct {
		path string
		want int
		body string // what the answer must contain
	}{
		{"/api/tags", http.StatusServiceUnavailable, `{"errors":{"body":["the server is overloaded; try again in a moment"]}}`},
		{"/", http.StatusServiceUnavailable, "site error page: the server is overloaded"},
		{"/healthz", http.StatusOK, "ok"},
		{"/readyz", http.StatusOK, "ready"},
	} {
		path, want := c.path, c.want
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || !strings.Contains(string(b), c.body) {
			t.Errorf("%s: %d %q, want %d and %q", path, resp.StatusCode, b, want, c.body)
		}
		if want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("%s: shed without Retry-After", path)
		}
	}
	if _, metrics := get(t, AdminHandler(reg, false), "GET", "/metrics"); !strings.Contains(metrics, "conduit_http_shed_total 2") {
		t.Errorf("metrics do not count the shed requests:\n%s", grep(metrics, "shed"))
	}
}
