package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// DebugHandler serves the Go runtime profiles (net/http/pprof) under
// /debug/pprof/. It is mounted only on the separate, opt-in debug listener
// (--debug-addr), never on the public mux: profiles reveal internals and a
// CPU profile costs CPU.
func DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// RunDebug serves DebugHandler on ln until ctx ends.
func RunDebug(ctx context.Context, ln net.Listener, logger *slog.Logger) {
	srv := &http.Server{
		Handler:           DebugHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: a CPU profile or trace streams for its duration.
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("debug listener", slog.Any("err", err))
	}
}
