package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/httpx"
)

type pinger struct{ err error }

func (p *pinger) Ping(context.Context) error { return p.err }

// copiedKey is the context key innerAPI's middleware sets.
type copiedKey struct{}

// innerAPI stands in for the API: its own mux behind a middleware that
// copies the request, as authentication does.
func innerAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/things/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "thing") })
	mux.HandleFunc("POST /api/things", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("GET /api/boom", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	copying := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), copiedKey{}, 1)))
		})
	}
	return copying(httpx.RecordRoute(mux))
}

func newTestServer(t *testing.T, db Pinger) (*Server, *prometheus.Registry, *strings.Builder) {
	t.Helper()
	logs := &strings.Builder{}
	reg := prometheus.NewRegistry()
	RegisterCacheStats(reg, "memory", func() (uint64, uint64) { return 7, 3 })
	s := New(Deps{
		API:      innerAPI(),
		Web:      http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") }),
		DB:       db,
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
		Registry: reg,
	})
	return s, reg, logs
}

func get(t *testing.T, h http.Handler, method, path string, header ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestHealthAndReadiness(t *testing.T) {
	db := &pinger{}
	s, _, _ := newTestServer(t, db)
	h := s.Handler()
	if code, body := get(t, h, "GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz = %d %q", code, body)
	}
	if code, _ := get(t, h, "GET", "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before MarkReady = %d, want 503", code)
	}
	s.MarkReady()
	if code, _ := get(t, h, "GET", "/readyz"); code != 200 {
		t.Errorf("readyz when ready = %d", code)
	}
	db.err = errors.New("down")
	if code, _ := get(t, h, "GET", "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with the database down = %d, want 503", code)
	}
	if code, _ := get(t, h, "GET", "/healthz"); code != 200 {
		t.Errorf("healthz with the database down = %d, want 200", code)
	}
	if code, body := get(t, h, "GET", "/some/page"); code != 200 || body != "page" {
		t.Errorf("web = %d %q", code, body)
	}
}

// Metrics and logs name the route matched by the API's own mux, even when
// a middleware in between copied the request.
func TestMetricsPerRoute(t *testing.T) {
	s, _, logs := newTestServer(t, &pinger{})
	h := s.Handler()
	for range 3 {
		get(t, h, "GET", "/api/things/1")
	}
	get(t, h, "GET", "/api/things/2")
	get(t, h, "POST", "/api/things")
	get(t, h, "GET", "/healthz")
	if code, _ := get(t, h, "GET", "/api/boom"); code != 500 {
		t.Errorf("panicking handler answered %d, want 500", code)
	}
	_, metrics := get(t, h, "GET", "/metrics")
	for _, want := range []string{
		`conduit_http_requests_total{code="200",method="GET",route="GET /api/things/{id}"} 4`,
		`conduit_http_requests_total{code="201",method="POST",route="POST /api/things"} 1`,
		`conduit_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		`conduit_http_requests_total{code="500",method="GET",route="GET /api/boom"} 1`,
		`conduit_http_request_duration_seconds_bucket{method="GET",route="GET /api/things/{id}",le="+Inf"} 4`,
		`conduit_http_request_duration_seconds_count{method="GET",route="GET /api/things/{id}"} 4`,
		`conduit_cache_hits_total{cache="memory"} 7`,
		`conduit_cache_misses_total{cache="memory"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, `route="/api/"`) {
		t.Errorf("metrics count API requests under the prefix route:\n%s", grep(metrics, "conduit_http_requests_total"))
	}
	if !strings.Contains(logs.String(), `"route":"GET /api/things/{id}"`) {
		t.Errorf("request log lacks the inner route:\n%s", logs)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Request logs carry method, route, status, duration and request id, and
// never the Authorization header or the body.
func TestRequestLog(t *testing.T) {
	s, _, logs := newTestServer(t, &pinger{})
	get(t, s.Handler(), "GET", "/api/things/1", "Authorization", "Token secret-token-value", "X-Request-Id", "abc-123")
	get(t, s.Handler(), "GET", "/api/things/1", "X-Request-Id", "bad id with spaces")
	line := logs.String()
	for _, want := range []string{`"method":"GET"`, `"status":200`, `"duration_ms":`, `"request_id":"abc-123"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log lacks %s: %s", want, line)
		}
	}
	if strings.Contains(line, "secret-token-value") || strings.Contains(line, "bad id with spaces") {
		t.Errorf("log leaks a header: %s", line)
	}
}
