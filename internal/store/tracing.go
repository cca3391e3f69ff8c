package store

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Spans of SQL statements, as children of the caller's span (a request's
// use case, a job): none are started without a recording parent, so the
// pools' health checks and the replicas' position samples do not make
// traces of their own. A span carries the statement's text (written with
// placeholders here) and never its arguments, which may be passwords'
// hashes or e-mail addresses.
//
// PostgreSQL is traced by pgx itself (ConnConfig.Tracer), one span per
// statement on the server that ran it: BEGIN, each statement, COMMIT, on
// the primary or a named replica. SQLite has no such hook: its reads
// (query, queryRow) get a span each, and a write transaction one span from
// waiting for the single writer to the commit (sqliteSpan).

const tracerName = "github.com/conduit-dev/conduit/internal/store"

// pgTracer is a pgx.QueryTracer and a pgx.BatchTracer: a pipelined batch
// of statements (one round trip) is one span named "batch", with an event
// per statement named as a statement's span would be.
type pgTracer struct{ tracer trace.Tracer }

// newPGTracer returns a tracer for tp's spans, or nil without a provider.
func newPGTracer(tp trace.TracerProvider) pgx.QueryTracer {
	if tp == nil {
		return nil
	}
	return pgTracer{tp.Tracer(tracerName)}
}

// pgSpanKey holds the span TraceQueryStart started, so that TraceQueryEnd
// ends that one and never the caller's.
type pgSpanKey struct{}

func (t pgTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, conn, operation(data.SQL), semconv.DBQueryText(data.SQL))
}

func (t pgTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	t.end(ctx, data.Err, attribute.Int64("db.response.affected_rows", data.CommandTag.RowsAffected()))
}

func (t pgTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	return t.start(ctx, conn, "batch", semconv.DBOperationBatchSize(data.Batch.Len()))
}

// start starts the client span of a statement or a batch on conn, under a
// recording parent only.
func (t pgTracer) start(ctx context.Context, conn *pgx.Conn, name string, what attribute.KeyValue) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	cfg := conn.Config()
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.DBSystemNamePostgreSQL, what,
			semconv.ServerAddress(cfg.Host), semconv.ServerPort(int(cfg.Port))))
	return context.WithValue(ctx, pgSpanKey{}, span)
}

// end ends the span start started, with err, or with done if it succeeded.
func (t pgTracer) end(ctx context.Context, err error, done ...attribute.KeyValue) {
	span, ok := ctx.Value(pgSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	} else {
		span.SetAttributes(done...)
	}
	span.End()
}

func (t pgTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	span, ok := ctx.Value(pgSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	// The batch's error, if any, is recorded once, at its end.
	span.AddEvent(operation(data.SQL), trace.WithAttributes(semconv.DBQueryText(data.SQL), attribute.Bool("failed", data.Err != nil)))
}

func (t pgTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	t.end(ctx, data.Err)
}

// sqliteSpan starts the span of a SQLite read (name "SELECT"…) or write
// transaction ("sqlite.tx"); end it with the outcome. Without a tracer, or
// without a recording parent, it costs a check.
func (db *DB) sqliteSpan(ctx context.Context, name, q string) (context.Context, func(error)) {
	if db.sqliteTracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, func(error) {}
	}
	attrs := []attribute.KeyValue{semconv.DBSystemNameSQLite}
	if q != "" {
		attrs = append(attrs, semconv.DBQueryText(q))
	}
	ctx, span := db.sqliteTracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}

// TraceSQLite records spans of SQLite reads and write transactions with
// tp's tracer (nil: none). PostgreSQL is traced through its pool instead
// (PostgresOptions.Tracer); on it this does nothing.
func (db *DB) TraceSQLite(tp trace.TracerProvider) {
	if db.d.name == "sqlite" && tp != nil {
		db.sqliteTracer = tp.Tracer(tracerName)
	}
}

// operation is a statement's first keyword, upper-cased ("SELECT",
// "INSERT", "WITH", "BEGIN"): a span name with few values.
func operation(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexAny(q, " \t\n("); i > 0 {
		q = q[:i]
	}
	if q == "" || len(q) > 16 {
		return "SQL"
	}
	return strings.ToUpper(q)
}

// traceParent is the W3C traceparent of ctx's span, or "" when it has
// none: kept with a job in the outbox, it makes the worker's span of the
// job a child of the write that enqueued it (queue.Options.Tracer).
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent")
}
