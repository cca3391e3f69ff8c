package store

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MaxNotifyPayload is the longest payload PostgreSQL's NOTIFY accepts
// (8000 bytes in a default build, less one to be safe).
const MaxNotifyPayload = 7999

// ErrNotifyUnsupported is returned by Notify and Listen on SQLite, where a
// single node needs no cross-node messages.
var ErrNotifyUnsupported = errors.New("notifications need PostgreSQL")

// Notify publishes payload on channel to every session listening on it,
// once the statement commits (PostgreSQL NOTIFY).
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	if db.pool == nil {
		return ErrNotifyUnsupported
	}
	if len(payload) > MaxNotifyPayload {
		return errors.New("notify payload too long")
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	_, err := db.write.ExecContext(ctx, db.d.rebind(`SELECT pg_notify(?, ?)`), channel, payload)
	return db.mapErr(err)
}

// Subscriber receives what Listen hears.
type Subscriber interface {
	// OnConnect runs each time the listening session is (re)established.
	// Notifications sent while it was down are lost: assume anything.
	OnConnect()
	// OnDisconnect runs when the session is found broken.
	OnDisconnect()
	// OnNotification runs for every payload, in order, one at a time.
	OnNotification(payload string)
}

// Listen keeps one dedicated connection LISTENing on channel until ctx is
// done, passing what arrives to s. A broken connection is replaced, with
// exponential backoff (100 ms up to 5 s, jittered); an idle one is pinged
// every 15 s so a dead server or network is noticed.
func (db *DB) Listen(ctx context.Context, channel string, s Subscriber, logger *slog.Logger) error {
	if db.pool == nil {
		return ErrNotifyUnsupported
	}
	cfg := db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "conduit-listener"
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, cfg, channel, s, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			break
		}
		logger.Warn("notification listener lost its connection; reconnecting",
			slog.String("channel", channel), slog.Any("error", err), slog.Duration("backoff", backoff))
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
		case <-time.After(sleep):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return ctx.Err()
}

// listenOnce runs one listening session until it breaks.
func listenOnce(ctx context.Context, cfg *pgx.ConnConfig, channel string, s Subscriber, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+2*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	s.OnConnect()
	defer s.OnDisconnect()
	for {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			s.OnNotification(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		// Quiet for a while: make sure the session is still there.
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}
