package store

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
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
// and returns once the NOTIFY has committed (PostgreSQL).
//
// Concurrent calls share statements (noticeBatch): while one NOTIFY is on
// its way, the calls meanwhile wait and then go together in the next, in
// the order they came. Every write that changes a cached list notifies the
// other nodes before it answers (cache.Coherent), and one NOTIFY each cost
// a pooled connection (waited for under load) and a transaction apiece;
// sent together they take one connection and one transaction per round
// trip, whatever the number of writers. One caller's notices keep their
// order (each waits for its own before sending the next), which is the
// order receivers rely on.
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	if db.pool == nil {
		return ErrNotifyUnsupported
	}
	if len(payload) > MaxNotifyPayload {
		return errors.New("notify payload too long")
	}
	n := &notice{channel: channel, payload: payload, done: make(chan error, 1)}
	b := &db.notices
	b.mu.Lock()
	b.pending = append(b.pending, n)
	lead := !b.sending
	b.sending = true
	b.mu.Unlock()
	if lead {
		// This call sends, for itself and whoever came meanwhile; not
		// bound to its own request's end, which would fail the others'.
		db.sendNotices(context.WithoutCancel(ctx), n)
	}
	select {
	case err := <-n.done:
		return err
	case <-ctx.Done():
		return db.mapErr(ctx.Err()) // it may still be sent
	}
}

// noticeBatch holds the Notify calls waiting for the next statement.
type noticeBatch struct {
	mu      sync.Mutex
	pending []*notice
	sending bool // a caller is sending: the others only wait
}

type notice struct {
	channel, payload string
	done             chan error // gets the statement's result
}

// maxNoticesPerStatement bounds a statement's notices (and its size:
// about 8 kB each at most).
const maxNoticesPerStatement = 32

// sendNotices sends the pending notices, maxNoticesPerStatement at a time
// in one statement each (pg_notify calls in one select list run in order,
// in one transaction), until none is left. Once mine (the calling
// request's, if any) is sent, the rest is left to a goroutine, so that
// no request sends for others for long.
func (db *DB) sendNotices(ctx context.Context, mine *notice) {
	b := &db.notices
	for {
		b.mu.Lock()
		batch := b.pending[:min(len(b.pending), maxNoticesPerStatement)]
		b.pending = b.pending[len(batch):]
		if len(batch) == 0 {
			b.pending = nil
			b.sending = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		var q strings.Builder
		q.WriteString("SELECT ")
		args := make([]any, 0, 2*len(batch))
		for i, n := range batch {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("pg_notify(?, ?)")
			args = append(args, n.channel, n.payload)
		}
		bctx, cancel := db.bound(ctx)
		_, err := db.write.ExecContext(bctx, db.d.rebind(q.String()), args...)
		cancel()
		err = db.mapErr(err)
		sentMine := false
		for _, n := range batch {
			n.done <- err
			sentMine = sentMine || n == mine
		}
		if sentMine {
			b.mu.Lock()
			more := len(b.pending) > 0
			b.sending = more
			b.mu.Unlock()
			if more {
				go db.sendNotices(context.Background(), nil)
			}
			return
		}
	}
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

// LiveSubscriber is a Subscriber that is also told, several times a
// second, that the session delivers: OnLive(sent) runs when a beat the
// listener sent at sent came back to it. PostgreSQL delivers the
// notifications of different transactions in the order they committed,
// so every notification committed before sent has been passed to
// OnNotification by then. Beats also carry what the subscriber wants the
// other listeners' subscribers to know (cache.Coherent: its leases).
type LiveSubscriber interface {
	Subscriber
	OnLive(sent time.Time)
	// Beat returns the text to add to the beat about to be sent (at most
	// MaxNotifyPayload less 64 bytes, no newline).
	Beat() string
	// OnBeat runs with what another listener's subscriber added to its
	// beat, in order with OnNotification.
	OnBeat(payload string)
}

// beatEvery is how often a listener whose subscriber is a LiveSubscriber
// sends itself a beat; beatTimeout how long sending one may take before
// the session counts as broken.
const (
	beatEvery   = 250 * time.Millisecond
	beatTimeout = time.Second
)

// Listen keeps one dedicated connection LISTENing on channel until ctx is
// done, passing what arrives to s. A broken connection is replaced, with
// exponential backoff (100 ms up to 1 s, jittered: while it is down a
// node's cache is off and its invalidations wait a second each, see
// cache.Coherent, so it comes back soon after the server); an idle one is
// pinged every 15 s so a dead server or network is noticed. For a LiveSubscriber
// the session instead sends itself a beat on the channel every 250 ms
// ("beat <session> <unix nanoseconds> <what Beat returned>", on its own
// connection, not the pool's: a busy pool never delays it) and reports
// each of its own that comes back (OnLive), and the others' (OnBeat); a
// beat that cannot be sent within a second breaks the session. Beats, its
// own and other listeners', never reach OnNotification.
func (db *DB) Listen(ctx context.Context, channel string, s Subscriber, logger *slog.Logger) error {
	if db.pool == nil {
		return ErrNotifyUnsupported
	}
	cfg := db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "conduit-listener"
	// A beat is a commit (NOTIFY takes a transaction id), and the session
	// reads no notification while it sends one: with synchronous commit a
	// beat waited for the WAL flush and the synchronous standby (stage 4),
	// which under load or during a failover held the listener long enough
	// for the other nodes to stop waiting for its acknowledgements (the
	// stage-4 drill then read an own write stale). A notification is
	// delivered at commit whether or not it was flushed; nothing durable
	// is written on this session.
	cfg.RuntimeParams["synchronous_commit"] = "off"
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
		backoff = min(2*backoff, time.Second)
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
	live, beats := s.(LiveSubscriber)
	var b [6]byte
	_, _ = crand.Read(b[:])
	session := hex.EncodeToString(b[:])
	nextBeat := time.Now()
	for {
		wait := 15 * time.Second
		if beats {
			if !time.Now().Before(nextBeat) {
				bctx, cancel := context.WithTimeout(ctx, beatTimeout)
				beat := "beat " + session + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
				if extra := live.Beat(); extra != "" {
					beat += " " + extra
				}
				_, err := conn.Exec(bctx, `SELECT pg_notify($1, $2)`, channel, beat)
				cancel()
				if err != nil {
					return err
				}
				nextBeat = time.Now().Add(beatEvery)
			}
			wait = time.Until(nextBeat)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if rest, ok := strings.CutPrefix(n.Payload, "beat "); ok {
				if beats {
					heardBeat(live, session, rest)
				}
				continue
			}
			s.OnNotification(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		if beats {
			continue // the next beat checks the session
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

// heardBeat passes a beat ("<session> <unix nanoseconds> [<extra>]") to
// live: OnLive if it is this session's own, OnBeat otherwise.
func heardBeat(live LiveSubscriber, session, beat string) {
	from, rest, _ := strings.Cut(beat, " ")
	sent, extra, _ := strings.Cut(rest, " ")
	if from != session {
		live.OnBeat(extra)
		return
	}
	if ns, err := strconv.ParseInt(sent, 10, 64); err == nil {
		live.OnLive(time.Unix(0, ns))
	}
}
