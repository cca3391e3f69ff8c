// Package server assembles the HTTP surface (the API under /api/, the HTML
// site under /, health and readiness) and runs it with timeouts and a
// graceful shutdown; metrics and profiles are served apart, on private
// listeners (admin.go).
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/httpx"
)

// Pinger reports whether a dependency answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps is what the server serves.
type Deps struct {
	API http.Handler // routes under /api/
	// APIError writes, in the API's error shape, what the middleware the
	// server puts in front of the API refuses (overload); nil: plain text.
	APIError httpx.ErrorWriter
	Web      http.Handler      // everything else; nil for an API-only node
	WebError httpx.ErrorWriter // as APIError, for the site's pages
	DB       Pinger
	Logger   *slog.Logger
	Registry *prometheus.Registry // where request metrics go; served by AdminHandler
	// Limit bounds concurrent requests of the API and the site together
	// (overload protection); a zero MaxInFlight serves everything.
	// Health and readiness are never limited.
	Limit httpx.LimitOptions
	// TrustedProxies may set X-Forwarded-For and X-Forwarded-Proto (the
	// load balancers).
	TrustedProxies httpx.TrustedProxies
	// Tracer, if not nil, traces every request but the health checks
	// (tracing.go).
	Tracer trace.TracerProvider
}

// Server is the HTTP server of one Conduit node.
type Server struct {
	handler http.Handler
	ready   atomic.Bool
	db      Pinger
	logger  *slog.Logger
}

// New builds the handler. The server reports not-ready until MarkReady.
func New(d Deps) *Server {
	s := &Server{db: d.DB, logger: d.Logger}
	m := newMetrics(d.Registry)

	RegisterReady(d.Registry, s.check)
	lim := httpx.NewLimiter(d.Limit)
	if lim != nil {
		registerLimiter(d.Registry, lim)
	}
	mux := http.NewServeMux()
	// The load balancer's checks bypass the limit, so that a busy node
	// still reports itself alive and ready.
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("/api/", lim.Wrap(d.API, orPlain(d.APIError)))
	if d.Web != nil {
		mux.Handle("/", lim.Wrap(d.Web, orPlain(d.WebError)))
	}
	s.handler = traced(httpx.Chain(mux, httpx.RealIP(d.TrustedProxies), httpx.Log(d.Logger, m.observe),
		httpx.StrictTransportSecurity(d.TrustedProxies)), d.Tracer, d.TrustedProxies)
	return s
}

func orPlain(w httpx.ErrorWriter) httpx.ErrorWriter {
	if w == nil {
		return httpx.PlainError
	}
	return w
}

// Handler returns the root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// MarkReady makes /readyz succeed (while the database answers).
func (s *Server) MarkReady() { s.ready.Store(true) }

// healthz says the process is up; it checks nothing else, so a slow
// database never gets a healthy process restarted.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz says this node should get traffic: started, not draining, and its
// database answers within a second.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.check(ctx); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// check is the readiness /readyz and the conduit_ready metric report.
func (s *Server) check(ctx context.Context) error {
	if !s.ready.Load() {
		return errors.New("starting or draining")
	}
	if err := s.db.Ping(ctx); err != nil {
		return errors.New("database unavailable")
	}
	return nil
}

// Run serves on ln until ctx is done, then drains: /readyz fails at once,
// requests are still served for drainDelay (so a load balancer notices),
// then the listener closes and in-flight requests get up to
// shutdownTimeout to finish.
func (s *Server) Run(ctx context.Context, ln net.Listener, drainDelay, shutdownTimeout time.Duration) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		// Bounds what the limiter does not wrap; for the API and the site
		// the limiter reads bodies under its own, shorter deadline, before
		// the request takes a slot.
		ReadTimeout: 30 * time.Second,
		// Bounds handler and answer together. The limiter sends answers
		// after freeing their slot, and gives up a client that stops
		// reading sooner (its write stall).
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.MarkReady()
	s.logger.Info("listening", slog.String("addr", ln.Addr().String()))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.logger.Info("draining", slog.Duration("drain_delay", drainDelay))
	time.Sleep(drainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.logger.Warn("shutdown timed out; closing remaining connections")
		err = srv.Close()
	}
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
