package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"runtime/pprof"
	"sync/atomic"
	"time"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain applies middleware so that the first one listed runs first.
func Chain(h http.Handler, mw ...Middleware) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

type requestIDKey struct{}

type loggerKey struct{}

// logger returns the logger of the Log middleware, so that errors are
// logged where requests are, in the configured format.
func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// RequestID returns the request's id, set by the Log middleware.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Observer is told about every finished request (metrics).
type Observer func(r *http.Request, status int, elapsed time.Duration)

// Log gives each request an id (X-Request-Id, kept from a trusted proxy
// when well-formed), recovers panics as 500s, and logs one line per request
// with the matched route and the client address (see RealIP). It never
// logs headers or bodies, so tokens and passwords stay out of the logs.
func Log(logger *slog.Logger, observe Observer) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := r.Header.Get("X-Request-Id")
			if !validRequestID(id) {
				id = newRequestID()
			}
			w.Header().Set("X-Request-Id", id)
			slot := &routeSlot{}
			ctx := context.WithValue(r.Context(), requestIDKey{}, id)
			ctx = context.WithValue(ctx, loggerKey{}, logger)
			r = r.WithContext(context.WithValue(ctx, routeKey{}, slot))
			rec := Record(w)
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					logger.Error("panic", slog.String("request_id", id), slog.Any("panic", p),
						slog.String("stack", string(debug.Stack())))
					if rec.Status() == 0 {
						http.Error(rec, "internal error", http.StatusInternalServerError)
					}
				}
				if slot.pattern != "" {
					r.Pattern = slot.pattern // r is this middleware's own copy
				}
				status := rec.Status()
				if status == 0 {
					status = http.StatusOK
				}
				elapsed := time.Since(start)
				if observe != nil {
					observe(r, status, elapsed)
				}
				// The group's attributes are built (and allocated) before
				// LogAttrs would look at the level: check it first.
				if !logger.Enabled(r.Context(), slog.LevelInfo) {
					return
				}
				logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
					slog.Group("http",
						slog.String("method", r.Method),
						slog.String("route", r.Pattern),
						slog.String("path", r.URL.Path),
						slog.Int("status", status),
						slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
						slog.String("request_id", id),
						slog.String("client_ip", ClientAddr(r)),
					))
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RecordRoute wraps the mux of a sub-tree (such as the API) so that the
// route it matched is what Log reports and metrics count, even when a
// middleware between them copied the request with WithContext.
func RecordRoute(mux http.Handler) http.Handler {
	finder, _ := mux.(interface {
		Handler(*http.Request) (http.Handler, string)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { // also after a panic, which Log turns into a 500
			if slot, ok := r.Context().Value(routeKey{}).(*routeSlot); ok && r.Pattern != "" {
				slot.pattern = r.Pattern
			}
		}()
		if finder != nil && routeLabels.Load() {
			// The route is matched twice (here and by the mux), so only
			// while profiling.
			_, pattern := finder.Handler(r)
			pprof.Do(r.Context(), pprof.Labels("route", pattern), func(ctx context.Context) {
				rr := r.WithContext(ctx)
				mux.ServeHTTP(w, rr)
				r.Pattern = rr.Pattern
			})
			return
		}
		mux.ServeHTTP(w, r) // ServeMux sets r.Pattern on the request it is given
	})
}

// routeLabels says whether RecordRoute labels the CPU profile's samples
// with the route ("route" label: `go tool pprof -tags`, or -tagfocus).
var routeLabels atomic.Bool

// LabelRoutes turns route labels of CPU profiles on or off. serve turns
// them on with --debug-addr, where profiles are taken.
func LabelRoutes(on bool) { routeLabels.Store(on) }

type routeKey struct{}

// routeSlot carries the innermost matched route back out to Log.
type routeSlot struct{ pattern string }
