package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/store"
)

const seedSummary = `Fills the database with a large, realistic, deterministic dataset: at
--scale 1, 1,000,000 users, ~20,000,000 follows, 2,000,000 articles with
1,000 tags, 10,000,000 favorites and 2,000,000 comments. Seeded users sign in
with email user<N>@example.com (N from 1) and the --password given.
The database must be empty unless --reset is given. Then every user's home
timeline is built in bulk (--timelines=false leaves them to
'conduit jobs build-timelines'), with the --fanout-max-followers and
--timeline-cap the servers will use.`

func seedCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		seedValue uint64
		scale     float64
		password  string
		reset     bool
		verify    bool
		quiet     bool
		batch     int
		timelines bool
	)
	cfg, err := config.ParseWith("seed", seedSummary, []string{"data-dir", "database-url", "bcrypt-cost", "fanout-max-followers", "timeline-cap"}, args, getenv, stderr,
		func(fs *flag.FlagSet) {
			fs.Uint64Var(&seedValue, "seed", 1, "random seed: the same seed and scale give the same data")
			fs.Float64Var(&scale, "scale", 1, "size factor: 1 is the full dataset, 0.01 a hundredth of it")
			fs.StringVar(&password, "password", "password", "password of every seeded user (hashed once)")
			fs.BoolVar(&reset, "reset", false, "delete all existing users, articles and their data first")
			fs.BoolVar(&verify, "verify", false, "check counts, counters and references after loading")
			fs.BoolVar(&quiet, "quiet", false, "no progress bar")
			fs.IntVar(&batch, "batch", 20000, "rows per write batch")
			fs.BoolVar(&timelines, "timelines", true, "build every user's home timeline after loading (set-based, in ranges of users)")
		})
	if err != nil {
		return err
	}
	if len(password) < 8 {
		return errors.New("--password must have at least 8 characters, like any account's")
	}
	hash, err := auth.Bcrypt{Cost: cfg.BcryptCost}.Hash(password)
	if err != nil {
		return err
	}

	target, err := openSeedTarget(ctx, cfg, reset)
	if err != nil {
		return err
	}
	defer target.close()

	bar := newProgressBar(stderr, quiet)
	opts := seed.Options{Seed: seedValue, Scale: scale, PasswordHash: hash, Batch: batch,
		Start: bar.start, Progress: bar.add, Step: bar.step}
	fmt.Fprintf(stderr, "seeding %s at scale %g (seed %d)\n", cfg.DatabaseDescription(), scale, seedValue)
	res, err := seed.Run(ctx, target.loader, opts)
	bar.stop()
	if err != nil {
		return err
	}
	if err := target.loader.Close(); err != nil {
		return err
	}
	target.loader = nil
	printSeedSummary(stdout, res)
	if timelines {
		start := time.Now()
		last := start
		tl, err := target.timelines(ctx, conduit.FeedOptions{MaxFollowers: cfg.FanoutMaxFollowers, TimelineCap: cfg.TimelineCap},
			func(p store.BulkTimelines) {
				if !quiet && time.Since(last) > 5*time.Second {
					last = time.Now()
					fmt.Fprintf(stderr, "timelines: %d users, %d rows (%s)\n", p.Users, p.Rows, time.Since(start).Round(time.Second))
				}
			})
		if err != nil {
			return fmt.Errorf("build timelines: %w", err)
		}
		took := time.Since(start)
		fmt.Fprintf(stdout, "timelines: %d users, %d rows, %d celebrities (over %d followers, merged on read) in %s (%.0f rows/s, %.0f users/s)\n",
			tl.Users, tl.Rows, tl.Celebrities, cfg.FanoutMaxFollowers, took.Round(time.Millisecond),
			float64(tl.Rows)/took.Seconds(), float64(tl.Users)/took.Seconds())
	}
	if verify {
		start := time.Now()
		if err := target.verify(ctx, res.Plan); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "verified: counts match the plan, counters and references are consistent (%s)\n", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// seedTarget is an open database ready for a bulk load.
type seedTarget struct {
	loader    store.BulkLoader
	counts    func(context.Context) (map[string]int64, error)
	integrity func(context.Context) error
	timelines func(context.Context, conduit.FeedOptions, func(store.BulkTimelines)) (store.BulkTimelines, error)
	closeDB   func() error
}

func (t *seedTarget) close() {
	if t.loader != nil {
		t.loader.Close()
	}
	t.closeDB()
}

func (t *seedTarget) verify(ctx context.Context, plan seed.Plan) error {
	got, err := t.counts(ctx)
	if err != nil {
		return err
	}
	for table, want := range plan.Tables() {
		if got[table] != want {
			return fmt.Errorf("verify: %s has %d rows, the plan says %d", table, got[table], want)
		}
	}
	return t.integrity(ctx)
}

func openSeedTarget(ctx context.Context, cfg config.Config, reset bool) (*seedTarget, error) {
	var db *store.DB
	var err error
	if cfg.DatabaseURL != "" {
		// Index builds and integrity checks over millions of rows take
		// minutes: no statement timeout for this process.
		db, err = store.OpenPostgres(ctx, cfg.DatabaseURL, store.PostgresOptions{MaxConns: 4, StatementTimeout: 24 * time.Hour})
	} else {
		db, err = store.OpenSQLite(ctx, cfg.SQLitePath())
	}
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if reset {
		if err := db.ResetData(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("reset: %w", err)
		}
	}
	l, err := db.BulkLoad(ctx)
	if errors.Is(err, store.ErrNotEmpty) {
		err = errors.New("the database already has data: seed an empty one, or pass --reset to delete everything first")
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return &seedTarget{loader: l, counts: db.TableCounts, integrity: db.CheckIntegrity,
		timelines: db.BuildTimelinesBulk, closeDB: db.Close}, nil
}

func printSeedSummary(w io.Writer, res seed.Result) {
	p := res.Plan
	fmt.Fprintf(w, "\n%-14s %12s %10s\n", "table", "rows", "write")
	for _, t := range []struct {
		name string
		n    int64
	}{
		{"users", p.Users}, {"follows", p.Follows}, {"articles", p.Articles},
		{"article_tags", p.ArticleTags}, {"favorites", p.Favorites}, {"comments", p.Comments},
	} {
		fmt.Fprintf(w, "%-14s %12d %10s\n", t.name, t.n, res.Tables[t.name].Round(time.Millisecond))
	}
	fmt.Fprintf(w, "%-14s %12d\n", "tags", p.Tags)
	fmt.Fprintf(w, "\nprepare %s, load %s, indexes and statistics %s; total %s (%.0f rows/s)\n",
		res.Prepare.Round(time.Millisecond), (res.Total - res.Prepare - res.Finish).Round(time.Millisecond),
		res.Finish.Round(time.Millisecond), res.Total.Round(time.Millisecond),
		float64(p.Total())/res.Total.Seconds())
}

// progressBar draws one line on stderr, redrawn a few times a second.
type progressBar struct {
	w       io.Writer
	quiet   bool
	total   int64
	done    atomic.Int64
	table   atomic.Value // string
	begin   time.Time
	stopped chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex // serialises writes to w

	finishing, stopOnce sync.Once
}

func newProgressBar(w io.Writer, quiet bool) *progressBar {
	b := &progressBar{w: w, quiet: quiet, stopped: make(chan struct{})}
	b.table.Store("")
	return b
}

func (b *progressBar) start(p seed.Plan) {
	b.total = p.Total()
	b.begin = time.Now()
	if b.quiet {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-b.stopped:
				b.draw()
				b.mu.Lock()
				fmt.Fprintln(b.w)
				b.mu.Unlock()
				return
			case <-t.C:
				b.draw()
			}
		}
	}()
}

func (b *progressBar) add(table string, rows int) {
	b.table.Store(table)
	b.done.Add(int64(rows))
}

// step ends the bar (all rows are written by then) and prints one line per
// finishing step.
func (b *progressBar) step(s string) {
	if b.quiet {
		return
	}
	b.finishing.Do(b.stop)
	fmt.Fprintf(b.w, "%s finishing: %s\n", time.Since(b.begin).Round(time.Second), s)
}

func (b *progressBar) draw() {
	done := b.done.Load()
	frac := float64(done) / float64(max(b.total, 1))
	const width = 30
	fill := min(int(frac*width), width)
	el := time.Since(b.begin)
	rate := float64(done) / max(el.Seconds(), 0.001)
	eta := "?"
	if rate > 0 && done < b.total {
		eta = time.Duration(float64(b.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	} else if done >= b.total {
		eta = "0s"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.w, "\r[%s%s] %5.1f%% %-12s %s/%s rows %s rows/s elapsed %s eta %s   ",
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), 100*frac, b.table.Load().(string),
		humanCount(done), humanCount(b.total), humanCount(int64(rate)), el.Round(time.Second), eta)
}

func (b *progressBar) stop() {
	if b.quiet || b.begin.IsZero() {
		return
	}
	b.stopOnce.Do(func() {
		close(b.stopped)
		b.wg.Wait()
	})
}

func humanCount(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
