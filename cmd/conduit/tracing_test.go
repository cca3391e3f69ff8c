package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/queue/natstest"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/telemetry/otlptest"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, serve exports one trace per
// request to an OTLP/HTTP endpoint: the request's server span (named
// after its route), the use case's span under it, the SQL statements'
// spans under that; the job the write enqueued runs in the worker as a
// child of the use case, its own SQL under it; and the request's log line
// names the trace and the span. On SQLite and on PostgreSQL.
func TestTracesOneRequestsTree(t *testing.T) {
	t.Parallel()
	for _, dbName := range []string{"sqlite", "postgres"} {
		t.Run(dbName, func(t *testing.T) {
			t.Parallel() // each waits for a batch of spans (2 s)
			var extra []string
			system := "sqlite"
			if dbName == "postgres" {
				extra = []string{"--database-url", storetest.NewMigratedPostgresDatabase(t)}
				system = "postgresql"
			}
			rcv := otlptest.Start(t)
			base, logs, stop := serveInProcessEnv(t, "ready", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL}, extra...)
			if !strings.Contains(logs.String(), `"msg":"exporting traces"`) {
				t.Errorf("no log line says traces are exported:\n%s", logs)
			}
			c := newClient(t, base)
			c.register("tracer")
			publish(c, "Traced")
			if st, _ := c.get("/readyz"); st != http.StatusOK {
				t.Fatalf("readyz: %d", st)
			}
			// A client's own trace context is not continued (it is not a
			// trusted proxy), only linked.
			const clientTrace, clientSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
			req, _ := http.NewRequest("GET", base+"/api/tags", nil)
			req.Header.Set("traceparent", "00-"+clientTrace+"-"+clientSpan+"-01")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()

			// The job runs a moment later; spans are exported in batches.
			deadline := time.Now().Add(20 * time.Second)
			for find(rcv.Spans(), "job feed.publish") == nil && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			stop() // flushes what is left
			spans := rcv.Spans()

			h := find(spans, "POST /api/articles")
			if h == nil {
				t.Fatalf("no server span POST /api/articles among %s", names(spans))
			}
			if h.Kind != tracepb.Span_SPAN_KIND_SERVER || h.ParentID != "" || h.Attrs["http.route"] != "POST /api/articles" ||
				h.Service != "conduit" || h.Role != "serve" {
				t.Errorf("server span: %+v", *h)
			}
			svc := child(spans, h, "conduit.CreateArticle")
			if svc == nil {
				t.Fatalf("no conduit.CreateArticle span under the server span; spans: %s", names(spans))
			}
			sql := childWhere(spans, svc, func(s otlptest.Span) bool { return s.Attrs["db.system.name"] == system })
			if sql == nil {
				t.Fatalf("no %s span under conduit.CreateArticle; spans: %s", system, names(spans))
			}
			if sql.Kind != tracepb.Span_SPAN_KIND_CLIENT || sql.StartUnixNano < svc.StartUnixNano || sql.EndUnixNano > svc.EndUnixNano {
				t.Errorf("SQL span not a client span within its parent: %+v (parent %+v)", *sql, *svc)
			}
			if system == "postgresql" && (sql.Attrs["db.query.text"] == "" || sql.Attrs["server.address"] == "") {
				t.Errorf("PostgreSQL span lacks the statement or the server: %+v", *sql)
			}

			job := child(spans, svc, "job feed.publish")
			if job == nil {
				t.Fatalf("the job's span is not a child of the use case that enqueued it; spans: %s", names(spans))
			}
			if job.Kind != tracepb.Span_SPAN_KIND_CONSUMER || job.Attrs["conduit.job.kind"] != "feed.publish" {
				t.Errorf("job span: %+v", *job)
			}
			if childWhere(spans, job, func(s otlptest.Span) bool { return s.Attrs["db.system.name"] == system }) == nil {
				t.Errorf("no SQL span under the job's span; spans: %s", names(spans))
			}

			if s := find(spans, "GET /readyz"); s != nil {
				t.Errorf("readiness checks are traced: %+v", *s)
			}
			tags := find(spans, "GET /api/tags")
			switch {
			case tags == nil:
				t.Errorf("no span for GET /api/tags")
			case tags.TraceID == clientTrace || tags.ParentID != "":
				t.Errorf("a client's traceparent was continued: %+v", *tags)
			case len(tags.Links) != 1 || tags.Links[0] != clientSpan:
				t.Errorf("the client's span is not linked: %+v", tags.Links)
			}

			line := logLine(t, logs.String(), func(l map[string]any) bool {
				http, _ := l["http"].(map[string]any)
				return l["msg"] == "request" && http["route"] == "POST /api/articles"
			})
			if line["trace_id"] != h.TraceID || line["span_id"] != h.ID {
				t.Errorf("request log line has trace_id %v span_id %v, want %s %s", line["trace_id"], line["span_id"], h.TraceID, h.ID)
			}
		})
	}
}

// A trace crosses Redis and NATS: the reads of a cached use case have
// Redis spans under them, and a job relayed through NATS JetStream runs in
// a separate `conduit worker` as a child of the web node's use case that
// enqueued it (the traceparent travels inside the job's message).
func TestTraceCrossesRedisAndNATS(t *testing.T) {
	rs := redistest.Start(t)
	nats := natstest.Start(t)
	rcv := otlptest.Start(t)
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL, "OTEL_SERVICE_NAME": "conduit-ci"}
	dir := t.TempDir()
	base, _, stop := serveInProcessEnv(t, "ready", env, "--data-dir", dir, "--cache-url", rs.URL(),
		"--cache-timeout", "1s", "--queue-url", nats.URL, "--workers", "0")
	wlogs, stopWorker := workerInProcess(t, env, "--data-dir", dir, "--queue-url", nats.URL)

	c := newClient(t, base)
	c.register("crosser")
	art := publish(c, "Across")
	c.get("/api/articles/" + art.Article.Slug)
	deadline := time.Now().Add(30 * time.Second)
	for find(rcv.Spans(), "job feed.publish") == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	stopWorker()
	stop()
	spans := rcv.Spans()

	create := find(spans, "conduit.CreateArticle")
	if create == nil || create.Role != "serve" || create.Service != "conduit-ci" {
		t.Fatalf("no conduit.CreateArticle span from the web node: %s", names(spans))
	}
	job := child(spans, create, "job feed.publish")
	if job == nil {
		t.Fatalf("the job's span is not a child of conduit.CreateArticle: %s\nworker log:\n%s", names(spans), wlogs)
	}
	if job.Role != "worker" {
		t.Errorf("the job ran in %q, want the worker process", job.Role)
	}
	if childWhere(spans, job, func(s otlptest.Span) bool { return s.Attrs["db.system.name"] == "sqlite" }) == nil {
		t.Errorf("no SQL span under the job in the worker: %s", names(spans))
	}
	article := find(spans, "conduit.Article")
	if article == nil {
		t.Fatalf("no conduit.Article span: %s", names(spans))
	}
	redis := childWhere(spans, article, func(s otlptest.Span) bool { return s.Attrs["db.system.name"] == "redis" })
	if redis == nil || !strings.HasPrefix(redis.Name, "redis ") || redis.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("no Redis span under conduit.Article: %s", names(spans))
	}
	for _, s := range spans {
		if strings.HasPrefix(s.Name, "redis ") && s.ParentID == "" {
			t.Errorf("a Redis call outside any request was traced (the heartbeat?): %+v", s)
			break
		}
	}
}

// workerInProcess runs `conduit worker` through run() with the
// environment env until stop or the end of the test.
func workerInProcess(t *testing.T, env map[string]string, args ...string) (logs *syncBuffer, stop func()) {
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"worker", "--log-format", "json"}, args...),
			func(k string) string { return env[k] }, logs, logs)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	t.Cleanup(stop)
	return logs, stop
}

// Without the OTEL variables nothing is exported and log lines carry no
// trace ids.
func TestNoTracesByDefault(t *testing.T) {
	base, logs := serveInProcess(t)
	newClient(t, base).get("/api/tags")
	if strings.Contains(logs.String(), "exporting traces") || strings.Contains(logs.String(), "trace_id") {
		t.Errorf("tracing is on without OTEL_EXPORTER_OTLP_ENDPOINT:\n%s", logs)
	}
}

// publish creates an article as c's user.
func publish(c *client, title string) articleOut {
	c.t.Helper()
	var art articleOut
	if st := c.call("POST", "/api/articles", map[string]any{"article": map[string]any{
		"title": title, "description": "d", "body": "b"}}, &art); st != http.StatusCreated {
		c.t.Fatalf("create article %q: status %d", title, st)
	}
	return art
}

func find(spans []otlptest.Span, name string) *otlptest.Span {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

// child finds the span named name whose parent is p, in p's trace.
func child(spans []otlptest.Span, p *otlptest.Span, name string) *otlptest.Span {
	return childWhere(spans, p, func(s otlptest.Span) bool { return s.Name == name })
}

func childWhere(spans []otlptest.Span, p *otlptest.Span, ok func(otlptest.Span) bool) *otlptest.Span {
	for i, s := range spans {
		if s.TraceID == p.TraceID && s.ParentID == p.ID && ok(s) {
			return &spans[i]
		}
	}
	return nil
}

func names(spans []otlptest.Span) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString("\n  " + s.Name + " " + s.TraceID[:8] + "/" + s.ID + " parent " + s.ParentID)
	}
	return b.String()
}

// logLine returns the first JSON log line match accepts.
func logLine(t *testing.T, logs string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && match(m) {
			return m
		}
	}
	t.Fatalf("no such log line in:\n%s", logs)
	return nil
}
