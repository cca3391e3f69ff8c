package queue

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// span starts the span of one attempt at j, a child of the write that
// enqueued it: the store keeps that write's W3C traceparent with the job
// (Job.Trace), in the outbox and in the message the relay sends through
// NATS. So one trace shows a request and the work it caused on another
// process, minutes later if need be. Jobs enqueued outside any trace
// start a trace of their own. Without a tracer it costs a nil check.
func (o Options) span(ctx context.Context, j conduit.Job) (context.Context, func(error)) {
	if o.Tracer == nil {
		return ctx, func(error) {}
	}
	if j.Trace != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": j.Trace})
	}
	ctx, span := o.Tracer.Tracer("github.com/conduit-dev/conduit/internal/queue").Start(ctx, "job "+kindLabel(j.Kind),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("conduit.job.kind", j.Kind), attribute.Int64("conduit.job.id", j.ID),
			attribute.Int("conduit.job.attempt", j.Attempts)))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}
