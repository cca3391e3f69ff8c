// Command stage7-measure prints the stage 7 measurements of
// docs/stage7.md against a running `conduit serve` on a seeded database
// (scripts/stage7-measure.sh runs it all):
//
//   - feed latency p50/p99 of the user who follows the most accounts and of
//     a user who follows the average number, read from the follows
//     ("before": the user's timeline state removed, so the stage 2 read
//     runs) and from the timeline ("after": rebuilt), in alternating
//     rounds, next to GET /api/articles/:slug on the same server;
//   - fan-out throughput: articles published one at a time by authors just
//     under the celebrity threshold, timeline rows written per second from
//     the publish's acknowledgement to the last follower's row (one worker:
//     that is the worker's rate, queue wake-up included);
//   - with -lag, publish → visible in a follower's feed (polled through the
//     API), p50/p99, meant to run while `conduit bench` loads the server.
//
// It reads and changes the database directly (timeline state of the two
// readers only), so it needs the server's --data-dir or --database-url.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
)

func main() {
	var (
		base, dataDir, dbURL, password string
		n, rounds, fanouts, lags       int
		maxFollowers, timelineCap      int
		lagOnly                        bool
	)
	flag.StringVar(&base, "url", "http://127.0.0.1:8080", "server")
	flag.StringVar(&dataDir, "data-dir", "", "SQLite data directory of the server")
	flag.StringVar(&dbURL, "database-url", "", "PostgreSQL URL of the server")
	flag.StringVar(&password, "password", "password", "password of the seeded users")
	flag.IntVar(&n, "n", 300, "requests per measurement")
	flag.IntVar(&rounds, "rounds", 2, "before/after rounds")
	flag.IntVar(&fanouts, "fanouts", 5, "articles published to measure the fan-out")
	flag.IntVar(&lags, "lags", 30, "articles published to measure publish → visible")
	flag.IntVar(&maxFollowers, "fanout-max-followers", 10000, "the server's --fanout-max-followers")
	flag.IntVar(&timelineCap, "timeline-cap", 1000, "the server's --timeline-cap")
	flag.BoolVar(&lagOnly, "lag", false, "measure only publish → visible (while conduit bench runs)")
	flag.Parse()
	ctx := context.Background()
	var db *store.DB
	var raw *sql.DB
	var err error
	if dbURL != "" {
		db, err = store.OpenPostgres(ctx, dbURL, store.PostgresOptions{MaxConns: 4, StatementTimeout: time.Hour})
		if err == nil {
			raw, err = sql.Open("pgx", dbURL)
		}
	} else {
		db, err = store.OpenSQLite(ctx, dataDir+"/conduit.db")
		if err == nil {
			raw, err = sql.Open("sqlite", "file:"+dataDir+"/conduit.db?_pragma=busy_timeout(10000)")
		}
	}
	check(err)
	defer db.Close()
	m := &measurer{base: base, db: db, raw: raw, password: password, opts: conduit.FeedOptions{MaxFollowers: maxFollowers, TimelineCap: timelineCap},
		client: &http.Client{Timeout: 30 * time.Second}}
	if lagOnly {
		m.publishLag(ctx, lags)
		return
	}
	m.feeds(ctx, n, rounds)
	m.fanout(ctx, fanouts)
}

type measurer struct {
	base, password string
	db             *store.DB
	raw            *sql.DB
	opts           conduit.FeedOptions
	client         *http.Client
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "stage7-measure:", err)
		os.Exit(1)
	}
}

func (m *measurer) one(q string, args ...any) int64 {
	var v int64
	check(m.raw.QueryRow(q, args...).Scan(&v))
	return v
}

// feeds measures the two readers' feeds before and after, and the
// article endpoint.
func (m *measurer) feeds(ctx context.Context, n, rounds int) {
	heavy := m.one(`SELECT follower_id FROM follows GROUP BY follower_id ORDER BY count(*) DESC, follower_id LIMIT 1`)
	heavyN := m.one(`SELECT count(*) FROM follows WHERE follower_id = $1`, heavy)
	avg := m.one(`SELECT count(*) / (SELECT count(*) FROM users) FROM follows`)
	typical := m.one(`SELECT follower_id FROM follows WHERE follower_id > 1000 GROUP BY follower_id HAVING count(*) = $1 ORDER BY follower_id LIMIT 1`, avg)
	slug := ""
	check(m.raw.QueryRow(`SELECT slug FROM articles ORDER BY id DESC LIMIT 1 OFFSET 1000`).Scan(&slug))
	tokens := map[int64]string{heavy: m.login(heavy), typical: m.login(typical)}
	fmt.Printf("feed latency: %d sequential requests per cell after 20 warm-up ones, GET /api/articles/feed?limit=10\n", n)
	fmt.Printf("  heavy reader: user %d follows %d accounts; average reader: user %d follows %d (the mean)\n", heavy, heavyN, typical, avg)
	fmt.Printf("  %-28s %-24s %-24s %-24s\n", "", "heavy p50 / p99", "average p50 / p99", "article p50 / p99")
	for r := 1; r <= rounds; r++ {
		for _, before := range []bool{true, false} {
			for _, u := range []int64{heavy, typical} {
				if before {
					_, err := m.raw.Exec(`DELETE FROM timeline_state WHERE user_id = $1`, u)
					check(err)
				} else {
					check(m.db.BuildTimeline(ctx, u, m.opts))
				}
			}
			name := fmt.Sprintf("round %d, after (timeline)", r)
			if before {
				name = fmt.Sprintf("round %d, before (on read)", r)
			}
			h := m.latency(n, "/api/articles/feed?limit=10", tokens[heavy])
			t := m.latency(n, "/api/articles/feed?limit=10", tokens[typical])
			a := ""
			if before {
				a = m.latency(n, "/api/articles/"+slug, "")
			}
			fmt.Printf("  %-28s %-24s %-24s %-24s\n", name, h, t, a)
		}
	}
}

// latency runs n sequential GETs after 20 warm-up ones.
func (m *measurer) latency(n int, path, token string) string {
	var d []time.Duration
	for i := range n + 20 {
		start := time.Now()
		st, _ := m.call("GET", path, token, "")
		if st != http.StatusOK {
			check(fmt.Errorf("GET %s: %d", path, st))
		}
		if i >= 20 {
			d = append(d, time.Since(start))
		}
	}
	return pct(d)
}

func pct(d []time.Duration) string {
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return fmt.Sprintf("%.2f / %.2f ms", ms(d[len(d)/2]), ms(d[min(len(d)-1, len(d)*99/100)]))
}

// fanout publishes articles by the authors with the most followers under
// the threshold and times until every follower's timeline has each.
func (m *measurer) fanout(ctx context.Context, k int) {
	rs, err := m.raw.Query(`
		SELECT f.followee_id, count(*) FROM follows f
		WHERE NOT EXISTS (SELECT 1 FROM fanout_authors c WHERE c.user_id = f.followee_id AND c.celebrity = 1)
		GROUP BY f.followee_id HAVING count(*) <= $1 ORDER BY count(*) DESC LIMIT $2`, m.opts.MaxFollowers, k)
	check(err)
	type author struct{ id, followers int64 }
	var authors []author
	for rs.Next() {
		var a author
		check(rs.Scan(&a.id, &a.followers))
		authors = append(authors, a)
	}
	rs.Close()
	fmt.Printf("fan-out: %d articles, one at a time, by the authors with the most followers under the threshold (%d)\n", len(authors), m.opts.MaxFollowers)
	var rows int64
	var total time.Duration
	for _, a := range authors {
		want := m.one(`SELECT count(*) FROM follows f JOIN timeline_state s ON s.user_id = f.follower_id WHERE f.followee_id = $1`, a.id)
		id, took := m.publishAndWait(a.id, func(article int64) bool {
			return m.one(`SELECT count(*) FROM timelines WHERE article_id = $1`, article) >= want
		})
		rows += want
		total += took
		fmt.Printf("  author %d (%d followers, %d with timelines): article %d in every timeline after %s\n", a.id, a.followers, want, id, took.Round(time.Millisecond))
	}
	if total > 0 {
		fmt.Printf("  %d timeline rows in %s: %.0f timeline inserts/s (one worker, publish acknowledged → last row committed)\n",
			rows, total.Round(time.Millisecond), float64(rows)/total.Seconds())
	}
}

// publishLag publishes articles by authors with a few hundred followers
// and polls one follower's feed (through the API) until each shows.
func (m *measurer) publishLag(ctx context.Context, k int) {
	rs, err := m.raw.Query(`
		SELECT f.followee_id, min(f.follower_id) FROM follows f
		WHERE NOT EXISTS (SELECT 1 FROM fanout_authors c WHERE c.user_id = f.followee_id AND c.celebrity = 1)
		GROUP BY f.followee_id HAVING count(*) BETWEEN 100 AND $1 ORDER BY f.followee_id LIMIT $2`, m.opts.MaxFollowers, k)
	check(err)
	type pair struct{ author, reader int64 }
	var pairs []pair
	for rs.Next() {
		var p pair
		check(rs.Scan(&p.author, &p.reader))
		pairs = append(pairs, p)
	}
	rs.Close()
	var d []time.Duration
	for _, p := range pairs {
		token := m.login(p.reader)
		// The reader's timeline must exist for the fan-out to reach it.
		if m.one(`SELECT count(*) FROM timeline_state WHERE user_id = $1 AND ready = 1`, p.reader) == 0 {
			check(m.db.BuildTimeline(ctx, p.reader, m.opts))
		}
		_, took := m.publishAndWait(p.author, func(article int64) bool {
			st, b := m.call("GET", "/api/articles/feed?limit=10", token, "")
			return st == http.StatusOK && strings.Contains(string(b), fmt.Sprintf("stage7-measure-%d-", p.author))
		})
		d = append(d, took)
	}
	fmt.Printf("publish → visible in a follower's feed (GET /api/articles/feed polled every 5 ms): %d articles, p50 / p99 %s\n", len(d), pct(d))
}

// publishAndWait publishes an article as the author and returns its id
// and the time from the acknowledgement until done(id).
func (m *measurer) publishAndWait(author int64, done func(int64) bool) (int64, time.Duration) {
	token := m.login(author)
	title := fmt.Sprintf("stage7-measure-%d-%d", author, time.Now().UnixNano())
	st, b := m.call("POST", "/api/articles", token, fmt.Sprintf(`{"article":{"title":%q,"description":"d","body":"b"}}`, title))
	acked := time.Now()
	var out struct{ Article struct{ Slug string } }
	if st != http.StatusCreated || json.Unmarshal(b, &out) != nil {
		check(fmt.Errorf("publish: %d %s", st, b))
	}
	var id int64
	check(m.raw.QueryRow(`SELECT id FROM articles WHERE slug = $1`, out.Article.Slug).Scan(&id))
	deadline := acked.Add(5 * time.Minute)
	for !done(id) {
		if time.Now().After(deadline) {
			check(errors.New("the fan-out did not finish within 5 minutes"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return id, time.Since(acked)
}

var tokenCache = map[int64]string{}

func (m *measurer) login(user int64) string {
	if t, ok := tokenCache[user]; ok {
		return t
	}
	var email string
	check(m.raw.QueryRow(`SELECT email FROM users WHERE id = $1`, user).Scan(&email))
	st, b := m.call("POST", "/api/users/login", "", fmt.Sprintf(`{"user":{"email":%q,"password":%q}}`, email, m.password))
	var out struct{ User struct{ Token string } }
	if st != http.StatusOK || json.Unmarshal(b, &out) != nil {
		check(fmt.Errorf("login as %s: %d %s", email, st, b))
	}
	tokenCache[user] = out.User.Token
	return out.User.Token
}

func (m *measurer) call(method, path, token, body string) (int, []byte) {
	req, err := http.NewRequest(method, m.base+path, strings.NewReader(body))
	check(err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
