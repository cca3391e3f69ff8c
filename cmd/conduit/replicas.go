package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/server"
	"github.com/conduit-dev/conduit/internal/store"
)

// attachReplicas sends the reads that may lag to --replica-urls (stage 4;
// see docs/stage4.md). Read-your-writes positions are kept in Redis when
// the cache is there (shared; docs/stage5.md): a write records its
// position there instead of waiting for every node. Otherwise they travel
// between the nodes on bus, the channel that keeps their caches coherent;
// without one (no cache) the positions get a channel of their own. SQLite
// ignores replicas.
func attachReplicas(ctx context.Context, cfg config.Config, db *store.DB, bus *cache.Coherent, shared *cache.Redis, reg *prometheus.Registry, tp trace.TracerProvider, logger *slog.Logger) error {
	urls := cfg.ReplicaURLList()
	if len(urls) == 0 {
		return nil
	}
	if db.Dialect() != "postgres" {
		logger.Warn("--replica-urls ignored: read replicas need a PostgreSQL --database-url")
		return nil
	}
	var positions store.PositionStore
	if shared != nil {
		// A position must outlive the lag cut-off, after which every
		// replica still in use has replayed it anyway.
		positions = cache.NewPositions(shared, max(time.Minute, 10*cfg.ReplicaMaxLag))
	} else if bus == nil {
		bus = cache.NewCoherent(cache.NewMemory(1), cache.CoherentOptions{
			Publish:    func(ctx context.Context, p string) error { return db.Notify(ctx, cacheChannel, p) },
			MaxPayload: store.MaxNotifyPayload,
			Logger:     logger,
		})
		go db.Listen(ctx, cacheChannel, bus, logger)
	}
	if err := db.AttachReplicas(ctx, store.ReplicaOptions{
		URLs:      urls,
		MaxLag:    cfg.ReplicaMaxLag,
		UserOf:    auth.UserID,
		Bus:       bus,
		Positions: positions,
		Pool:      poolOptions(cfg, tp),
		Logger:    logger,
	}); err != nil {
		return fmt.Errorf("--replica-urls: %w", err)
	}
	server.RegisterReadStats(reg, db.ReadStats)
	where := "notify"
	if positions != nil {
		where = "redis"
	}
	logger.Info("reads that may lag go to replicas", slog.Int("replicas", len(db.ReadStats().Replicas)),
		slog.Duration("max_lag", cfg.ReplicaMaxLag), slog.String("positions", where))
	return nil
}
