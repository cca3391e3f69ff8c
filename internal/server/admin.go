package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler serves what monitoring reads and the public must not:
// /metrics in the Prometheus format (request counts per route, latencies,
// shed requests, cache hits; they show what the site is used for and how
// hard it is pushed) and, when profiles is true, DebugHandler's profiles.
// It is mounted only on the separate admin listener (--admin-addr), never
// on the public address.
func AdminHandler(reg *prometheus.Registry, profiles bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if profiles {
		addProfiles(mux)
	}
	return mux
}

// DebugHandler serves the Go runtime profiles (net/http/pprof) under
// /debug/pprof/. It is mounted only on the separate, opt-in debug listener
// (--debug-addr), never on the public mux: profiles reveal internals (the
// command line included) and a CPU profile costs CPU.
func DebugHandler() http.Handler {
	mux := http.NewServeMux()
	addProfiles(mux)
	return mux
}

func addProfiles(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// RunPrivate serves h on ln (the admin or debug listener) until ctx ends.
func RunPrivate(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: a CPU profile or trace streams for its duration.
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("private listener", slog.String("addr", ln.Addr().String()), slog.Any("err", err))
	}
}
