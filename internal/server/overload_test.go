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

	"github.com/conduit-dev/conduit/internal/httpx"
)

type okPinger struct{}

func (okPinger) Ping(context.Context) error { return nil }

// With every slot taken, API requests are shed but the load balancer's and
// monitoring's requests still get through.
func TestOverloadSparesOperationalEndpoints(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	s := New(Deps{API: api, DB: okPinger{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: prometheus.NewRegistry(), Limit: httpx.LimitOptions{MaxInFlight: 1, MaxWait: time.Millisecond}})
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
	}{
		{"/api/tags", http.StatusServiceUnavailable},
		{"/healthz", http.StatusOK},
		{"/readyz", http.StatusOK},
		{"/metrics", http.StatusOK},
	} {
		path, want := c.path, c.want
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/metrics" && !strings.Contains(string(b), "conduit_http_shed_total 1") {
			t.Errorf("/metrics does not report the shed request:\n%s", b)
		}
	}
}
