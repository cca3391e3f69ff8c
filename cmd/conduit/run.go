package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/idempotency"
	"github.com/conduit-dev/conduit/internal/media"
	"github.com/conduit-dev/conduit/internal/server"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/telemetry"
	"github.com/conduit-dev/conduit/internal/web"
)

const usage = `Conduit: a social blogging platform (RealWorld) that runs on one server and grows by configuration.

Usage: conduit <command> [flags]

Commands:
  serve     run the web server (JSON API under /api, HTML site under /)
  worker    run only workers (feed fan-out, notifications), no web server
  jobs      list, retry or drop queued and dead jobs; build timelines
  migrate   apply database schema migrations and exit
  copy      copy a stage-1 SQLite data dir into an empty PostgreSQL database
  seed      fill the database with a large realistic dataset (for benchmarks)
  bench     drive a running server with a browser and mobile traffic mix
  help      show this help

Run 'conduit <command> --help' for a command's flags.
`

// run is the whole program; main only supplies the OS.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "worker":
		return worker(ctx, rest, getenv, stdout, stderr)
	case "jobs":
		return jobsCmd(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "copy":
		return copyData(ctx, rest, getenv, stdout, stderr)
	case "seed":
		return seedCmd(ctx, rest, getenv, stdout, stderr)
	case "bench":
		return benchCmd(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// cacheChannel is the PostgreSQL notification channel of cache invalidations.
const cacheChannel = "conduit_cache"

var serveFlags = append([]string{"addr", "data-dir", "database-url", "jwt-keys", "token-ttl", "log-format", "log-level",
	"shutdown-timeout", "drain-delay", "cache-items", "cache-url", "cache-timeout", "cache-ttl", "cache-list-ttl", "bcrypt-cost", "db-max-conns", "db-conn-lifetime",
	"db-statement-timeout", "db-connect-timeout", "max-inflight", "max-queue", "queue-wait", "trusted-proxies",
	"idempotency-ttl", "admin-addr", "debug-addr", "memory-limit", "replica-urls", "replica-max-lag", "asset-url", "edge-purge-url", "shared-max-age",
	"login-window", "login-max-per-addr", "login-max-per-account", "signup-window", "signup-max-per-addr", "public-url", "media-url"}, queueFlags...)

const serveSummary = `Runs the web server. The schema is migrated on start.

While the database cannot be reached (PostgreSQL down or still starting),
serve waits for it, retrying with a growing delay (up to 5 s) and logging
each attempt: meanwhile /healthz answers 200, /readyz 503, and everything
else 503 with Retry-After. Errors that waiting cannot fix (a wrong password,
an unknown database, a bad URL) end it at once.`

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse("serve", serveSummary, serveFlags, args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stdout)
	proxies, err := httpx.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	tracing, err := startTracing(ctx, getenv, "serve", logger)
	if err != nil {
		return err
	}
	defer tracing.stop()
	tp := tracing.Provider
	var outside int64 // held outside the Go heap
	if cfg.DatabaseURL == "" {
		outside = store.SQLiteCacheBytes()
	}
	if err := tuneGC(getenv, cfg.MemoryLimit, os.DirFS("/"), outside, logger); err != nil {
		return err
	}
	tokens, err := newTokens(cfg)
	if err != nil {
		return err
	}

	images, err := newMedia(ctx, cfg, proxies)
	if err != nil {
		return err
	}

	// The server answers from the start; the API and the site are
	// installed in app once the database is connected and migrated.
	reg := prometheus.NewRegistry()
	app := &lateApp{}
	srv := server.New(server.Deps{
		API:      app.API(),
		APIError: api.WriteError,
		Web:      app.Web(),
		WebError: app.WebError,
		DB:       app,
		Logger:   logger,
		Registry: reg,
		Limit: httpx.LimitOptions{
			MaxInFlight: cfg.MaxInFlight,
			MaxQueue:    cfg.MaxQueue,
			MaxWait:     cfg.QueueWait,
			// Avatar uploads may be longer than other bodies.
			MaxBodyFor: func(r *http.Request) int64 { return max(api.BodyLimit(r), web.BodyLimit(r)) },
		},
		TrustedProxies: proxies,
		Tracer:         tp,
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := servePrivate(pctx, cfg, reg, logger); err != nil {
		ln.Close()
		return err
	}
	logger.Info("starting", slog.String("database", cfg.DatabaseDescription()), slog.String("addr", ln.Addr().String()))
	runCtx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	served := make(chan error, 1)
	go func() { served <- srv.Run(runCtx, ln, cfg.DrainDelay, cfg.ShutdownTimeout) }()

	db, err := openWhenUp(ctx, cfg, tp, logger, connectBackoff())
	if err == nil {
		defer db.Close()
		err = migrateAndCheck(ctx, db, logger)
	}
	if err != nil {
		stopServer()
		runErr := <-served
		if ctx.Err() != nil {
			return runErr // stopped (SIGTERM) before the database came: a clean exit
		}
		return errors.Join(err, runErr)
	}

	svcCache, closeCache, err := newCache(ctx, cfg, db, reg, tp, logger)
	if err != nil {
		stopServer()
		return errors.Join(err, <-served)
	}
	defer closeCache()
	// Read-your-writes positions share the cache's coherence channel
	// when the cache is kept coherent over PostgreSQL (stage 3).
	// With the Redis cache (stage 5) they are kept in Redis instead.
	bus, _ := svcCache.(*cache.Coherent)
	shared, _ := svcCache.(*cache.Redis)
	if err := attachReplicas(ctx, cfg, db, bus, shared, reg, tp, logger); err != nil {
		stopServer()
		return errors.Join(err, <-served)
	}
	server.RegisterPoolStats(reg, db.PoolStats)
	// Sign-in throttling counts in the database, or in Redis when the
	// cache is there (the database whenever Redis cannot be used); so do
	// idempotency locks (the database's claim stays the authority).
	var attempts conduit.AttemptCounter = db
	idem := idempotency.Options{TTL: cfg.IdempotencyTTL, Logger: logger}
	var cacheOpts []conduit.Option
	if r, ok := svcCache.(*cache.Redis); ok {
		attempts = r.Attempts(db)
		idem.Locker = r
		// A node that may have missed an invalidation starts a new
		// generation (docs/stage5.md): the ttl guards nothing there, and
		// each key loaded once per --cache-ttl (6 hours) instead of per 5
		// minutes lifts the steady-state hit ratio. 30 minutes was too
		// short: a profile read every 3 minutes missed once in 10, and
		// the keys a cold start filled together expired within 6 minutes
		// of each other (usernames fell from 100% to 68-89% then; ninth
		// round); at 6 hours their expiries spread over 72 minutes. The same holds
		// for the anonymous list pages: Sync proves before each use that
		// this node applied every acknowledged write's invalidation, so
		// they live as long (1 s otherwise). The pages a write drops are
		// rebuilt once for the cluster by the writing node, in the
		// background, so that readers find them kept. In Redis the pages
		// live --cache-list-ttl (a day): their versions keep them fresh,
		// and the long tail's pages, read less often than every 30
		// minutes, missed on every read (docs/stage5.md, ninth round).
		cacheOpts = append(cacheOpts, conduit.WithCacheTTL(cfg.CacheTTL), conduit.WithListTTL(cfg.CacheTTL),
			conduit.WithSharedListTTL(cfg.CacheListTTL), conduit.WithListRebuilds())
	} else if _, ok := svcCache.(*cache.Memory); ok {
		// One node on its embedded database: every invalidation is this
		// process's own, applied before the write is answered, and none
		// can be missed, so the list pages may live as long as values (the
		// 1 s default is for nodes that hear of other nodes' writes
		// through a listener that may die silently). Measured on the full
		// dataset: 42% of the site's list pages were kept with 1 s.
		cacheOpts = append(cacheOpts, conduit.WithListTTL(conduit.DefaultCacheTTL))
	} else if _, ok := svcCache.(*cache.Coherent); ok {
		// Nodes over LISTEN/NOTIFY (stage 2 and 3): the listener beats
		// (store.Listen) and the cache is used only while a beat came back
		// within the last second, which proves every invalidation committed
		// until then applied here; a silent listener turns the list caches
		// off within that second, the bound the 1 s page life gave. So pages
		// live as long as values while beats arrive, not a second each.
		cacheOpts = append(cacheOpts, conduit.WithListTTL(conduit.DefaultCacheTTL))
	}
	svcOpts := append(cacheOpts, conduit.WithThrottle(attempts, conduit.ThrottleLimits{
		LoginWindow: cfg.LoginWindow, LoginPerAddr: cfg.LoginMaxPerAddr, LoginPerAccount: cfg.LoginMaxPerAcct,
		SignupWindow: cfg.SignupWindow, SignupPerAddr: cfg.SignupMaxPerAddr,
	}), conduit.WithTracer(tp))
	caching := httpx.DefaultCaching()
	caching.SharedMaxAge = cfg.SharedMaxAge
	caching.SurrogateKeys = len(cfg.EdgePurgeList()) > 0
	if caching.SurrogateKeys {
		purger, stopPurger, err := startPurger(cfg, caching, reg, logger)
		if err != nil {
			stopServer()
			return errors.Join(err, <-served)
		}
		// Purges go on while the server drains (writes still come in);
		// they stop after it has returned.
		defer stopPurger()
		svcOpts = append(svcOpts, conduit.WithPurger(purger))
	}
	svc := conduit.NewService(db, svcCache, auth.Bcrypt{Cost: cfg.BcryptCost, Turns: auth.NewTurns(0)}, svcOpts...)
	site := web.New(svc, tokens, logger, web.Options{TrustedProxies: proxies, Media: images, Forms: db,
		Caching: caching, AssetURL: cfg.AssetURL, Assets: db})
	if cfg.CacheItems > 0 {
		// The anonymous list and page caches. With --cache-items 0 they
		// still run, but a node without a cache reports no cache counters.
		server.RegisterCacheStats(reg, "lists", svc.ListCacheStats)
		// hits: pages a write dropped, rebuilt in the background from
		// the database and kept; misses: rebuilds that kept nothing
		// (listcache_rebuild.go).
		server.RegisterCacheStats(reg, "listrebuilds", svc.ListRebuildStats)
		// hits: pages another node's write dropped that this node found
		// rebuilt in Redis (no database read).
		server.RegisterCacheStats(reg, "listrebuildsshared", func() (uint64, uint64) { return svc.ListRebuildsShared(), 0 })
		server.RegisterCacheStats(reg, "pages", site.PageCacheStats)
	}
	// This build's static files go to the database before the node takes
	// traffic: a page of this build served by any node links only files
	// every node can serve (docs/stage6.md).
	if err := site.PublishAssets(ctx, assetKeep); err != nil {
		stopServer()
		return errors.Join(fmt.Errorf("publishing static files: %w", err), <-served)
	}
	app.install(
		api.New(svc, tokens, api.WithCaching(caching), api.WithIdempotency(db, idem), api.WithMedia(images)),
		site,
		db,
	)
	go purgeIdempotencyKeys(ctx, db, logger)
	go republishAssets(ctx, site, logger)
	if cfg.Workers > 0 {
		wctx, stopWorkers := context.WithCancel(ctx)
		w, err := startWorkers(wctx, cfg, db, reg, tp, logger)
		if err != nil {
			stopWorkers()
			stopServer()
			return errors.Join(err, <-served)
		}
		defer func() { stopWorkers(); w.wait() }() // jobs in hand finish before the database closes
	}
	logger.Info("ready", slog.String("database", cfg.DatabaseDescription()), slog.String("addr", ln.Addr().String()),
		slog.Int("workers", cfg.Workers), slog.String("queue", queueDescription(cfg)))
	return <-served
}

// newCache chooses the service's cache. --cache-items 0 takes the cache
// out entirely (every read goes to the database), which is what one wants
// when chasing a suspected stale read. With --cache-url the cache is
// Redis, shared by every node, with a near cache in each (stage 5);
// otherwise the in-process cache, kept coherent across nodes on
// PostgreSQL through LISTEN/NOTIFY (stage 3).
func newCache(ctx context.Context, cfg config.Config, db *store.DB, reg *prometheus.Registry, tp trace.TracerProvider, logger *slog.Logger) (conduit.Cache, func(), error) {
	if cfg.CacheItems == 0 {
		if cfg.CacheURL != "" {
			logger.Warn("--cache-items 0: running without any cache; --cache-url is ignored")
		}
		return cache.None{}, func() {}, nil
	}
	if cfg.CacheURL != "" {
		r, err := cache.NewRedis(cfg.CacheURL, cache.RedisOptions{
			Timeout: cfg.CacheTimeout,
			// The near cache is bounded in bytes: about 4 KiB per item.
			NearBytes:  cfg.CacheItems * 4 << 10,
			Registerer: reg,
			Logger:     logger,
			Tracer:     tp,
		})
		if err != nil {
			return nil, nil, err
		}
		server.RegisterCacheStats(reg, "redis", r.Stats)
		logger.Info("shared cache", slog.String("url", config.MaskURL(cfg.CacheURL)))
		return r, r.Close, nil
	}
	memCache := cache.NewMemory(cfg.CacheItems)
	server.RegisterCacheStats(reg, "memory", memCache.Stats)
	if db.Dialect() != "postgres" {
		return memCache, func() {}, nil
	}
	// Several nodes may share this database: keep their caches coherent
	// through LISTEN/NOTIFY.
	coherent := cache.NewCoherent(memCache, cache.CoherentOptions{
		Publish:    func(ctx context.Context, p string) error { return db.Notify(ctx, cacheChannel, p) },
		MaxPayload: store.MaxNotifyPayload,
		Logger:     logger,
	})
	go db.Listen(ctx, cacheChannel, coherent, logger)
	return coherent, func() {}, nil
}

// servePrivate starts the listeners the public must not reach: metrics on
// --admin-addr, profiles on --debug-addr (on the admin listener when both
// name the same address). They stop when ctx ends.
func servePrivate(ctx context.Context, cfg config.Config, reg *prometheus.Registry, logger *slog.Logger) error {
	type private struct {
		addr, what, msg string
		h               http.Handler
		level           slog.Level
	}
	var ps []private
	if cfg.AdminAddr != "" {
		ps = append(ps, private{cfg.AdminAddr, "admin listener", "serving metrics on the admin listener",
			server.AdminHandler(reg, cfg.DebugAddr == cfg.AdminAddr), slog.LevelInfo})
	}
	if cfg.DebugAddr != "" {
		// CPU profiles taken there tell the routes apart.
		httpx.LabelRoutes(true)
		if cfg.DebugAddr == cfg.AdminAddr {
			ps[0].msg = "serving metrics and Go profiles on the admin listener, which is also the debug listener"
			ps[0].level = slog.LevelWarn
		} else {
			ps = append(ps, private{cfg.DebugAddr, "debug listener", "serving Go profiles on the debug listener",
				server.DebugHandler(), slog.LevelWarn})
		}
	}
	for _, p := range ps {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", p.what, err)
		}
		go server.RunPrivate(ctx, ln, p.h, logger)
		logger.Log(ctx, p.level, p.msg, slog.String("addr", ln.Addr().String()))
	}
	return nil
}

// newMedia keeps uploads in the object store --media-url names, or in the
// data dir.
func newMedia(ctx context.Context, cfg config.Config, proxies httpx.TrustedProxies) (*media.Media, error) {
	var store media.Store
	var err error
	if cfg.MediaURL != "" {
		store, err = media.NewS3(ctx, cfg.MediaURL)
	} else {
		store, err = media.NewDir(cfg.MediaDir())
	}
	if err != nil {
		return nil, err
	}
	return media.New(store, media.Options{PublicURL: cfg.PublicURL, TrustedProxies: proxies}), nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse("migrate", "Applies pending schema migrations to the database and exits. Unlike serve, it does\nnot wait for the database: when it cannot be reached, migrate fails at once.",
		[]string{"data-dir", "database-url", "db-connect-timeout"}, args, getenv, stderr)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := db.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintf(stdout, "%s: applied %d migration(s); schema is up to date\n", cfg.DatabaseDescription(), n)
	return nil
}

// openStore opens the database; tp, if not nil, traces its statements.
func openStore(ctx context.Context, cfg config.Config, tp trace.TracerProvider) (*store.DB, error) {
	if cfg.DatabaseURL != "" {
		return store.OpenPostgres(ctx, cfg.DatabaseURL, poolOptions(cfg, tp))
	}
	db, err := store.OpenSQLite(ctx, cfg.SQLitePath())
	if err == nil {
		db.TraceSQLite(tp)
	}
	return db, err
}

func poolOptions(cfg config.Config, tp trace.TracerProvider) store.PostgresOptions {
	return store.PostgresOptions{
		Tracer:           tp,
		MaxConns:         cfg.DBMaxConns,
		ConnLifetime:     cfg.DBConnLifetime,
		StatementTimeout: cfg.DBStatementTimeout,
		ConnectTimeout:   cfg.DBConnectTimeout,
	}
}

func newTokens(cfg config.Config) (*auth.Tokens, error) {
	var keys []auth.Key
	var err error
	if cfg.JWTKeys != "" {
		keys, err = auth.ParseKeys(cfg.JWTKeys)
	} else {
		keys, err = auth.LoadOrCreateKeyFile(cfg.KeyFile())
	}
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return auth.NewTokens(keys, cfg.TokenTTL)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: level}
	// Lines logged with a request's or a job's context carry its trace.
	if cfg.LogFormat == "json" {
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
}

// purgeIdempotencyKeys deletes expired idempotency keys every few minutes
// (any node may do it; the delete is harmless when repeated).
func purgeIdempotencyKeys(ctx context.Context, db *store.DB, logger *slog.Logger) {
	every(ctx, 10*time.Minute, func() {
		if n, err := db.PurgeIdempotencyKeys(ctx, time.Now()); err != nil {
			logger.Warn("purging idempotency keys", slog.Any("error", err))
		} else if n > 0 {
			logger.Info("purged idempotency keys", slog.Int64("deleted", n))
		}
	})
}

// every runs fn each period until ctx ends (first after one period).
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}
