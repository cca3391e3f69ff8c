package server

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/httpx"
)

// traced wraps h in a server span per request (otelhttp), when tp is not
// nil. Health and readiness checks are not traced: they come every few
// seconds from every balancer and say nothing about users' requests. A
// trace context sent by a client is continued only when the request came
// through a trusted proxy; from anyone else it is only linked, so that a
// client cannot make the node sample (and export) whatever it asks for.
// The span's name is set to the matched route once it is known
// (nameSpan), so names stay few: "GET /api/articles/{slug}", never a path.
//
// otelhttp would fall back on the process-wide OpenTelemetry globals;
// every provider it uses is passed here instead (metrics come from
// Prometheus, so its meter is a no-op).
func traced(h http.Handler, tp trace.TracerProvider, proxies httpx.TrustedProxies) http.Handler {
	if tp == nil {
		return h
	}
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithPublicEndpointFn(func(r *http.Request) bool { return !proxies.IsProxy(r) }),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
}

// nameSpan names the request's server span after its route (the pattern
// the mux matched, or "unmatched").
func nameSpan(r *http.Request, route string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	name := route
	if !strings.Contains(route, " ") { // a pattern without a method
		name = r.Method + " " + route
	}
	span.SetName(name)
	span.SetAttributes(semconv.HTTPRoute(route))
}
