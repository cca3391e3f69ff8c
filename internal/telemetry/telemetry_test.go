package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/telemetry/otlptest"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSetupFollowsTheStandardVariables(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		endpoint string // "" : off
		err      string
	}{
		{name: "nothing set: off", env: nil},
		{name: "base endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"},
			endpoint: "http://collector:4318/v1/traces"},
		{name: "traces endpoint used as it is", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://a:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/otlp/traces"}, endpoint: "https://b/otlp/traces"},
		{name: "SDK disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_SDK_DISABLED": "true"}},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "none"}},
		{name: "gRPC refused", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			err: "only http/protobuf"},
		{name: "bad sampler", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_SAMPLER": "sometimes"},
			err: "OTEL_TRACES_SAMPLER"},
		{name: "bad ratio", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
			"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, err: "between 0 and 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Setup(context.Background(), envOf(tc.env), "serve")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if tr.Enabled() != (tc.endpoint != "") || tr.Endpoint != tc.endpoint {
				t.Errorf("enabled %v endpoint %q, want %q", tr.Enabled(), tr.Endpoint, tc.endpoint)
			}
			if !tr.Enabled() && tr.Provider != nil {
				t.Error("off, yet a provider is returned")
			}
		})
	}
}

// A sampler that never samples still exports nothing, and a ratio of 1
// exports everything.
func TestSamplerAndExport(t *testing.T) {
	for _, tc := range []struct {
		sampler string
		want    int
	}{{"always_off", 0}, {"parentbased_traceidratio", 3}} {
		rcv := otlptest.Start(t)
		tr, err := Setup(context.Background(), envOf(map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL, "OTEL_TRACES_SAMPLER": tc.sampler, "OTEL_TRACES_SAMPLER_ARG": "1"}), "worker")
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_, s := tr.Provider.Tracer("test").Start(context.Background(), "op")
			s.End()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := tr.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		got := rcv.Spans()
		if len(got) != tc.want {
			t.Errorf("%s: %d spans exported, want %d", tc.sampler, len(got), tc.want)
		}
		for _, s := range got {
			if s.Role != "worker" || s.Service != "conduit" {
				t.Errorf("resource: service %q role %q", s.Service, s.Role)
			}
		}
	}
}

// Log lines get the ids of the span in their context, and only then.
func TestLogHandlerAddsTraceIDs(t *testing.T) {
	rcv := otlptest.Start(t)
	tr, err := Setup(context.Background(), envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL}), "serve")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With(slog.String("component", "x"))
	ctx, span := tr.Provider.Tracer("test").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log: %q", buf.String())
	}
	var in, out map[string]any
	json.Unmarshal([]byte(lines[0]), &in)
	json.Unmarshal([]byte(lines[1]), &out)
	sc := span.SpanContext()
	if in["trace_id"] != sc.TraceID().String() || in["span_id"] != sc.SpanID().String() || in["component"] != "x" {
		t.Errorf("line inside the span: %v", in)
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("line outside any span has a trace id: %v", out)
	}
}
