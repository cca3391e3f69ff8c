package cache

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// span starts the span of one call to Redis ("redis get", "redis set"…),
// a child of the caller's: the heartbeat and other background calls,
// which have no recording parent, make none. Near-cache hits are spans
// too: DoMultiCache answers them from memory.
// Without a tracer it costs a nil check.
func (r *Redis) span(ctx context.Context, op string) (context.Context, func(error)) {
	if r.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, func(error) {}
	}
	ctx, span := r.tracer.Start(ctx, "redis "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.DBSystemNameRedis, semconv.DBOperationName(op)))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}
