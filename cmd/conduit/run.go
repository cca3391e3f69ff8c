package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/server"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/web"
)

const usage = `Conduit: a social blogging platform (RealWorld) that runs on one server and grows by configuration.

Usage: conduit <command> [flags]

Commands:
  serve     run the web server (JSON API under /api, HTML site under /)
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
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "copy":
		return copyData(ctx, rest, getenv, stdout, stderr)
	case "seed":
		return seedCmd(ctx, rest, getenv, stdout, stderr)
	case "bench":
		return benchCmd(ctx, rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

var serveFlags = []string{"addr", "data-dir", "database-url", "jwt-keys", "token-ttl", "log-format", "log-level",
	"shutdown-timeout", "drain-delay", "cache-items", "bcrypt-cost", "db-max-conns", "db-conn-lifetime",
	"db-statement-timeout", "db-connect-timeout", "trust-proxy", "debug-addr"}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse("serve", "Runs the web server. The schema is migrated on start.", serveFlags, args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stdout)
	tuneGC(getenv)

	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if n, err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	} else if n > 0 {
		logger.Info("migrated database", slog.Int("applied", n))
	}
	if err := db.CheckSchema(ctx); err != nil {
		return err
	}

	tokens, err := newTokens(cfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	memCache := cache.NewMemory(max(cfg.CacheItems, 1))
	server.RegisterCacheStats(reg, "memory", memCache.Stats)
	svc := conduit.NewService(db, memCache, auth.Bcrypt{Cost: cfg.BcryptCost})

	srv := server.New(server.Deps{
		API:      api.New(svc, tokens),
		Web:      web.New(svc, tokens, logger, web.Options{TrustProxy: cfg.TrustProxy}),
		DB:       db,
		Logger:   logger,
		Registry: reg,
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if cfg.DebugAddr != "" {
		dln, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("debug listener: %w", err)
		}
		dctx, stop := context.WithCancel(ctx)
		defer stop()
		go server.RunDebug(dctx, dln, logger)
		logger.Warn("serving Go profiles on the debug listener", slog.String("addr", dln.Addr().String()))
	}
	logger.Info("starting", slog.String("database", cfg.DatabaseDescription()), slog.String("addr", ln.Addr().String()))
	return srv.Run(ctx, ln, cfg.DrainDelay, cfg.ShutdownTimeout)
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse("migrate", "Applies pending schema migrations to the database and exits.",
		[]string{"data-dir", "database-url", "db-connect-timeout"}, args, getenv, stderr)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg)
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

func openStore(ctx context.Context, cfg config.Config) (*store.DB, error) {
	if cfg.DatabaseURL != "" {
		return store.OpenPostgres(ctx, cfg.DatabaseURL, store.PostgresOptions{
			MaxConns:         cfg.DBMaxConns,
			ConnLifetime:     cfg.DBConnLifetime,
			StatementTimeout: cfg.DBStatementTimeout,
			ConnectTimeout:   cfg.DBConnectTimeout,
		})
	}
	return store.OpenSQLite(ctx, cfg.SQLitePath())
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
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
