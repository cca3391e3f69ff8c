// Package telemetry sets up distributed tracing (OpenTelemetry, exported
// over OTLP/HTTP) from the standard OTEL_* environment variables, and adds
// trace and span ids to log lines. It is the only package that knows the
// SDK and the exporter: the others take the trace.TracerProvider it returns
// as a parameter, where nil means "not tracing" and costs nothing.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is the tracer provider of one process.
type Tracing struct {
	// Provider is nil when tracing is off.
	Provider trace.TracerProvider
	// Endpoint is where spans go (empty when off).
	Endpoint string
	sdk      *sdktrace.TracerProvider
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil && t.Provider != nil }

// Shutdown exports the spans still buffered and stops the exporter; it
// waits at most until ctx ends.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// Setup reads the standard variables through getenv and returns the
// process's tracing: on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a full
// URL, used as it is) or OTEL_EXPORTER_OTLP_ENDPOINT (a base URL, to which
// /v1/traces is added) is set, off otherwise or when OTEL_SDK_DISABLED is
// true or OTEL_TRACES_EXPORTER is none. OTEL_SERVICE_NAME (default
// "conduit") names the service; role (serve, worker) is added as the
// resource attribute conduit.role. OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG choose the sampler (default parentbased_always_on).
// The exporter reads its own settings (OTEL_EXPORTER_OTLP_HEADERS,
// _TIMEOUT, _COMPRESSION, _CERTIFICATE, ...) from the process environment.
func Setup(ctx context.Context, getenv func(string) string, role string) (*Tracing, error) {
	url := endpoint(getenv)
	if url == "" || strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return &Tracing{}, nil
	}
	if e := getenv("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: only otlp (over HTTP) is supported", e)
	}
	if p := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p == "" {
		p = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		if p != "" && p != "http/protobuf" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is supported", p)
		}
	} else if p != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=%s: only http/protobuf is supported", p)
	}
	sampler, err := samplerFrom(getenv)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url))
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	name := getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "conduit"
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name), attribute.String("conduit.role", role)}
	if host, err := os.Hostname(); err == nil {
		attrs = append(attrs, semconv.HostName(host))
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, attrs...)),
		sdktrace.WithSampler(sampler),
	)
	return &Tracing{Provider: sdk, Endpoint: url, sdk: sdk}, nil
}

// endpoint is the URL spans are sent to, or "".
func endpoint(getenv func(string) string) string {
	if u := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); u != "" {
		return u
	}
	if u := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); u != "" {
		return strings.TrimSuffix(u, "/") + "/v1/traces"
	}
	return ""
}

// samplerFrom reads OTEL_TRACES_SAMPLER and its argument (the names the
// specification gives; the ratio defaults to 1).
func samplerFrom(getenv func(string) string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if a := getenv("OTEL_TRACES_SAMPLER_ARG"); a != "" {
		r, err := strconv.ParseFloat(a, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%s: want a ratio between 0 and 1", a)
		}
		ratio = r
	}
	switch s := getenv("OTEL_TRACES_SAMPLER"); s {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%s is not supported", s)
	}
}
