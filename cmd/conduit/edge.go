package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/edge"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/web"
)

// assetKeep is how long the static files of a build that no longer runs
// stay servable: far longer than any edge or browser keeps a page.
const assetKeep = 30 * 24 * time.Hour

// startPurger starts the edge purge publisher of --edge-purge-url. Purges
// are retried as long as the edge could still hold what they are for
// (s-maxage plus stale-while-revalidate). stop ends it after a last short
// attempt at what is pending.
func startPurger(cfg config.Config, c httpx.Caching, reg *prometheus.Registry, logger *slog.Logger) (conduit.Purger, func(), error) {
	p, err := edge.New(edge.Options{
		URLs:        cfg.EdgePurgeList(),
		FlushKey:    conduit.KeySite,
		GiveUpAfter: c.SharedMaxAge + c.StaleWhileRevalidate,
		Registerer:  reg,
		Logger:      logger,
	})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	logger.Info("purging edge caches on write", slog.Any("edges", cfg.EdgePurgeList()))
	return p, func() { cancel(); <-done }, nil
}

// republishAssets marks this build's static files as in use once a day, so
// that a node of a build that runs for weeks keeps them servable by the
// others.
func republishAssets(ctx context.Context, site *web.Site, logger *slog.Logger) {
	every(ctx, 24*time.Hour, func() {
		if err := site.PublishAssets(ctx, assetKeep); err != nil {
			logger.Warn("republishing static files", slog.Any("error", err))
		}
	})
}
