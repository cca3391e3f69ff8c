package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/server"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/web"
)

// lateApp stands in for the API and the site while serve waits for its
// database, so that the server can answer from the start: /healthz
// succeeds, /readyz fails because Ping does, and other requests get 503
// with Retry-After. install puts the real handlers in place.
type lateApp struct {
	cur atomic.Pointer[appHandlers]
}

type appHandlers struct {
	api  http.Handler
	site *web.Site
	db   server.Pinger
}

var errStarting = errors.New("starting: the database is not connected and migrated yet")

// install makes the application serve; /readyz then follows db.
func (l *lateApp) install(api http.Handler, site *web.Site, db server.Pinger) {
	l.cur.Store(&appHandlers{api: api, site: site, db: db})
}

// Ping fails until install, then asks the database.
func (l *lateApp) Ping(ctx context.Context) error {
	a := l.cur.Load()
	if a == nil {
		return errStarting
	}
	return a.db.Ping(ctx)
}

// API and Web forward to the installed handlers; until then the API
// answers in its JSON error shape and the site in plain text, both 503
// with Retry-After. A load balancer sends nothing here while /readyz
// fails; this answers anyone who comes straight to the node.
func (l *lateApp) API() http.Handler {
	return l.forward(func(a *appHandlers) http.Handler { return a.api }, api.WriteError)
}
func (l *lateApp) Web() http.Handler {
	return l.forward(func(a *appHandlers) http.Handler { return a.site }, httpx.PlainError)
}

// WebError is the site's error writer once it is installed (the server's
// middleware in front of the site uses it), plain text before.
func (l *lateApp) WebError(w http.ResponseWriter, r *http.Request, err error) {
	if a := l.cur.Load(); a != nil {
		a.site.WriteError(w, r, err)
		return
	}
	httpx.PlainError(w, r, err)
}

func (l *lateApp) forward(pick func(*appHandlers) http.Handler, starting httpx.ErrorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := l.cur.Load()
		if a == nil {
			w.Header().Set("Cache-Control", "no-store")
			starting(w, r, fmt.Errorf("%w: %w", conduit.ErrUnavailable, errStarting))
			return
		}
		pick(a).ServeHTTP(w, r)
	})
}

// backoff is how long openWhenUp waits between attempts: First, doubled
// after each failure up to Max.
type backoff struct {
	First, Max time.Duration
}

// connectBackoff retries quickly at first (a database starting beside
// Conduit is up within seconds), then every 5 s, so a long outage costs a
// log line per 5 s, not a stream of them.
func connectBackoff() backoff { return backoff{First: 250 * time.Millisecond, Max: 5 * time.Second} }

// openWhenUp opens the database, waiting while it cannot be reached: each
// failed attempt is logged with the database URL masked, and retried after
// a delay that grows as b says. An error that waiting cannot fix (a wrong
// password, an unknown database, a bad URL, an unusable SQLite file) ends
// it at once, as does the end of ctx.
func openWhenUp(ctx context.Context, cfg config.Config, tp trace.TracerProvider, logger *slog.Logger, b backoff) (*store.DB, error) {
	delay := b.First
	for attempt := 1; ; attempt++ {
		db, err := openStore(ctx, cfg, tp)
		if err == nil {
			if attempt > 1 {
				logger.Info("database connected", slog.String("database", cfg.DatabaseDescription()), slog.Int("attempts", attempt))
			}
			return db, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, conduit.ErrUnavailable) {
			return nil, err
		}
		logger.Warn("database unavailable; waiting for it", slog.String("database", cfg.DatabaseDescription()),
			slog.Int("attempt", attempt), slog.Duration("retry_in", delay), slog.Any("error", err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, b.Max)
	}
}

// migrateAndCheck brings the schema up to date and checks it.
func migrateAndCheck(ctx context.Context, db *store.DB, logger *slog.Logger) error {
	n, err := db.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if n > 0 {
		logger.Info("migrated database", slog.Int("applied", n))
	}
	return db.CheckSchema(ctx)
}
