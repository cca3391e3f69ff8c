// Package edge tells the edge caches in front of Conduit (Varnish, a CDN)
// which cached answers a write made stale: it implements conduit.Purger by
// sending the write's edge keys to every configured edge, after the write,
// asynchronously and with retries, so that an edge that is slow or down
// never slows or fails a user's write.
//
// The protocol is one request per batch of keys: PURGE <edge URL> with the
// keys, space-separated, in a Surrogate-Key header, answered 200 when the
// edge has banned every cached answer tagged with any of them
// (deploy/varnish/conduit.vcl).
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Publisher.
type Options struct {
	// URLs are the edges' purge addresses, e.g. http://10.0.0.7:6081/.
	URLs []string
	// FlushKey is the key on every cached answer: sent alone when more
	// keys are pending than MaxPending, it empties the edge.
	FlushKey string
	// MaxPending bounds the keys waiting for one edge (default 10,000).
	// Beyond it the pending keys are replaced by FlushKey: more misses
	// for a moment, never a stale answer and never unbounded memory.
	MaxPending int
	// GiveUpAfter is how long a purge is retried (default 90 s). Choose the
	// edge's longest freshness (s-maxage plus stale-while-revalidate): by
	// then the edge has dropped what the purge was for anyway.
	GiveUpAfter time.Duration
	// RepeatAfter sends every delivered purge once more after this long
	// (default 2 s; negative: never). An answer computed before a write
	// but stored by the edge after its purge would otherwise stay until it
	// expires; the repeat removes it.
	RepeatAfter time.Duration
	// Timeout bounds one purge request (default 2 s).
	Timeout    time.Duration
	Client     *http.Client // default: a client with Timeout
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxPending <= 0 {
		o.MaxPending = 10_000
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = 90 * time.Second
	}
	if o.RepeatAfter == 0 {
		o.RepeatAfter = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// maxKeysPerRequest keeps one request's header well under the 8 KiB an
// edge accepts by default (keys are about 20 bytes).
const maxKeysPerRequest = 200

// Publisher sends purges to the edges. Purge may be called from any
// goroutine; Run delivers.
type Publisher struct {
	o     Options
	edges []*edgeQueue
	m     *metrics
}

// edgeQueue is what is waiting for one edge.
type edgeQueue struct {
	url    string
	label  string
	mu     sync.Mutex
	keys   map[string]bool // key -> send again after RepeatAfter once delivered
	since  time.Time       // when the oldest pending key was queued
	wake   chan struct{}
	failed bool // the last attempt failed (log the recovery)
	// pending shows len(keys); set under mu whenever keys changes.
	pending prometheus.Gauge
}

// New checks the edge URLs and returns a Publisher.
func New(o Options) (*Publisher, error) {
	o.defaults()
	if len(o.URLs) == 0 {
		return nil, errors.New("edge: no purge URL")
	}
	p := &Publisher{o: o, m: newMetrics(o.Registerer)}
	for _, raw := range o.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("edge purge URL %q: want http(s)://host:port/", raw)
		}
		p.edges = append(p.edges, &edgeQueue{url: raw, label: u.Host, keys: map[string]bool{}, wake: make(chan struct{}, 1),
			pending: p.m.pending.WithLabelValues(u.Host)})
	}
	return p, nil
}

// Purge queues keys for every edge and returns at once.
func (p *Publisher) Purge(keys ...string) {
	for _, e := range p.edges {
		p.queue(e, keys, true)
	}
}

// queue adds keys to e's pending set; repeat says whether they are to be
// sent again after delivery.
func (p *Publisher) queue(e *edgeQueue, keys []string, repeat bool) {
	e.mu.Lock()
	if len(e.keys) == 0 {
		e.since = time.Now()
	}
	for _, k := range keys {
		e.keys[k] = e.keys[k] || repeat
	}
	if len(e.keys) > p.o.MaxPending {
		clear(e.keys)
		e.keys[p.o.FlushKey] = true
		p.m.overflows.WithLabelValues(e.label).Inc()
	}
	e.pending.Set(float64(len(e.keys)))
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// take empties e's pending set.
func (e *edgeQueue) take() (map[string]bool, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys, since := e.keys, e.since
	e.keys = map[string]bool{}
	e.pending.Set(0)
	return keys, since
}

// Run delivers purges until ctx ends, then tries once more, briefly, to
// deliver what is pending.
func (p *Publisher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range p.edges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.deliver(ctx, e)
		}()
	}
	wg.Wait()
}

// deliver is the loop of one edge: take everything pending, send it, and
// retry with a growing pause (merging keys queued meanwhile) until it is
// delivered or GiveUpAfter has passed since its oldest key was queued.
func (p *Publisher) deliver(ctx context.Context, e *edgeQueue) {
	for {
		select {
		case <-e.wake:
		case <-ctx.Done():
			p.flushOnStop(e)
			return
		}
		keys, since := e.take()
		pause := 100 * time.Millisecond
		for len(keys) > 0 {
			err := p.send(ctx, e, keys)
			if err == nil {
				p.delivered(e, keys, since)
				break
			}
			if time.Since(since) > p.o.GiveUpAfter {
				p.m.dropped.WithLabelValues(e.label).Add(float64(len(keys)))
				p.o.Logger.Error("edge purge given up; those answers expire on their own", slog.String("edge", e.label),
					slog.Int("keys", len(keys)), slog.Duration("tried_for", time.Since(since)), slog.Any("error", err))
				break
			}
			if !e.failed {
				p.o.Logger.Warn("edge purge failed; retrying", slog.String("edge", e.label), slog.Any("error", err))
				e.failed = true
			}
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				p.queue(e, sortedKeys(keys), false)
				p.flushOnStop(e)
				return
			}
			pause = min(2*pause, 5*time.Second)
			more, _ := e.take()
			for k, r := range more {
				keys[k] = keys[k] || r
			}
		}
	}
}

func (p *Publisher) delivered(e *edgeQueue, keys map[string]bool, since time.Time) {
	p.m.delay.WithLabelValues(e.label).Observe(time.Since(since).Seconds())
	if e.failed {
		p.o.Logger.Info("edge purges delivered again", slog.String("edge", e.label))
		e.failed = false
	}
	var again []string
	for k, repeat := range keys {
		if repeat {
			again = append(again, k)
		}
	}
	if len(again) > 0 && p.o.RepeatAfter > 0 {
		time.AfterFunc(p.o.RepeatAfter, func() { p.queue(e, again, false) })
	}
}

// flushOnStop makes one short attempt at what is pending when the node
// stops.
func (p *Publisher) flushOnStop(e *edgeQueue) {
	keys, _ := e.take()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.o.Timeout)
	defer cancel()
	if err := p.send(ctx, e, keys); err != nil {
		p.m.dropped.WithLabelValues(e.label).Add(float64(len(keys)))
		p.o.Logger.Warn("edge purge not delivered before stopping", slog.String("edge", e.label), slog.Any("error", err))
	}
}

// send delivers keys to e, in requests of at most maxKeysPerRequest keys.
func (p *Publisher) send(ctx context.Context, e *edgeQueue, keys map[string]bool) error {
	list := sortedKeys(keys)
	for len(list) > 0 {
		n := min(len(list), maxKeysPerRequest)
		if err := p.request(ctx, e, list[:n]); err != nil {
			p.m.requests.WithLabelValues(e.label, "error").Inc()
			return err
		}
		p.m.requests.WithLabelValues(e.label, "ok").Inc()
		list = list[n:] // a retry sends the delivered part again: harmless

	}
	return nil
}

func (p *Publisher) request(ctx context.Context, e *edgeQueue, keys []string) error {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "PURGE", e.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Surrogate-Key", strings.Join(keys, " "))
	res, err := p.o.Client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("edge answered %s", res.Status)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type metrics struct {
	requests  *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	overflows *prometheus.CounterVec
	pending   *prometheus.GaugeVec
	delay     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_edge_purge_requests_total", Help: "Purge requests sent to edges, by result.",
		}, []string{"edge", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_edge_purge_dropped_keys_total", Help: "Edge keys whose purge was given up (the answers expire on their own).",
		}, []string{"edge"}),
		overflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_edge_purge_overflows_total", Help: "Times the pending keys of an edge were replaced by one purge of everything.",
		}, []string{"edge"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "conduit_edge_purge_pending_keys", Help: "Edge keys waiting to be sent.",
		}, []string{"edge"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "conduit_edge_purge_delay_seconds", Help: "From a write's purge being queued to the edge confirming it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"edge"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.dropped, m.overflows, m.pending, m.delay)
	}
	return m
}
