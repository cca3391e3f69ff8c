package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/telemetry"
)

// processTracing is the tracing of a serve or worker process.
type processTracing struct {
	*telemetry.Tracing
	logger *slog.Logger
}

// startTracing turns tracing on when the standard OTEL_* variables ask for
// it (telemetry.Setup); Provider is nil otherwise.
func startTracing(ctx context.Context, getenv func(string) string, role string, logger *slog.Logger) (processTracing, error) {
	t, err := telemetry.Setup(ctx, getenv, role)
	if err != nil {
		return processTracing{}, err
	}
	if t.Enabled() {
		logger.Info("exporting traces", slog.String("endpoint", config.MaskURL(t.Endpoint)))
	}
	return processTracing{t, logger}, nil
}

// stop sends the spans still buffered, waiting at most 5 s for the
// collector.
func (p processTracing) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		p.logger.Warn("exporting the last traces", slog.Any("error", err))
	}
}
