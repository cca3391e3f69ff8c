package conduit

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// WithTracer records a span for every use case the Service runs (named
// after the method: "conduit.Article"), between the request's span and the
// database's. A nil provider traces nothing.
func WithTracer(tp trace.TracerProvider) Option {
	return func(s *Service) {
		if tp != nil {
			s.tracer = tp.Tracer("github.com/conduit-dev/conduit/internal/conduit")
		}
	}
}

// span starts the span of one use case; end it when the use case returns:
//
//	ctx, end := s.span(ctx, "Article")
//	defer end()
//
// Without a tracer it costs a nil check.
func (s *Service) span(ctx context.Context, name string) (context.Context, func()) {
	if s.tracer == nil {
		return ctx, noEnd
	}
	ctx, sp := s.tracer.Start(ctx, "conduit."+name)
	return ctx, func() { sp.End() }
}

func noEnd() {}
