//go:build linux

package hostile

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// minBound is the least latency bound a well-behaved client's p99 is held
// to under attack. The target is 10× the unloaded p99 of the same run; on
// a shared two-core machine an unloaded p99 of a few milliseconds times
// ten is within the noise of a neighbour's compile, so the bound is never
// tighter than this.
const minBound = 500 * time.Millisecond

// Source addresses (all of 127.0.0.0/8 is this machine): the node sees each
// client as its own address, as it would see different people.
const (
	ipNormal = "127.0.0.2" // the well-behaved client
	ipSetup  = "127.0.0.3" // makes the fixture
)

// attack is one kind of hostile client.
type attack struct {
	name string
	// stores: the attack legitimately writes (sign-ups within the limit,
	// password changes) and checks what it wrote itself; for every other
	// attack the database must be exactly as before.
	stores bool
	// once: the attack's checks depend on the state it leaves (throttling
	// counters), so it cannot be tried a second time.
	once bool
	run  func(t *testing.T, s *suite)
}

// attacks run in this order against one node; each uses its own source
// addresses, so that one attack's throttling does not meet another's.
var attacks = []attack{
	{name: "slow-bodies", run: slowBodies},
	{name: "never-reading", run: neverReading},
	{name: "oversized", run: oversized},
	{name: "malformed", run: malformed},
	{name: "not-text", run: notText},
	{name: "json-strictness", run: jsonStrictness},
	{name: "unicode-names", run: unicodeNames},
	{name: "idempotency-squatting", stores: true, run: idempotencySquatting},
	{name: "brute-force-sign-in", once: true, run: bruteForce},
	{name: "sign-up-flood", stores: true, run: signupFlood},
	{name: "token-revocation", stores: true, run: tokenRevocation},
}

// suite is one node under attack, with its fixture and the well-behaved
// client's unloaded latency.
type suite struct {
	n        *node
	f        fixture
	probe    *probe
	unloaded time.Duration // p99 of the probe on the idle node
	results  []result
}

// result is the well-behaved client's latency during one attack.
type result struct {
	attack        string
	n             int
	p50, p99, max time.Duration
	bound         time.Duration
}

// TestHostile attacks a real node on each database. See the package doc.
func TestHostile(t *testing.T) {
	testproc.SkipShort(t, "runs conduit servers under attack")
	testproc.LoadAlone(t) // not beside the drills (testproc.LoadShared)
	type backend struct {
		name     string
		postgres bool
	}
	backends := []backend{{name: "sqlite"}}
	if storetest.PostgresURL(t) != "" {
		backends = append(backends, backend{name: "postgres", postgres: true})
	}
	var report strings.Builder
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dbURL := ""
			if b.postgres {
				dbURL = storetest.NewPostgresDatabase(t)
			}
			s := newSuite(t, dbURL)
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) { s.run(t, a) })
			}
			requests := s.n.checkLog(t)
			fmt.Fprintf(&report, "%s: %d requests answered, none with a 5xx; well-behaved client unloaded p99 %v\n",
				b.name, requests, s.unloaded.Round(100*time.Microsecond))
			fmt.Fprintf(&report, "  %-24s %5s %9s %9s %9s %9s\n", "attack", "n", "p50", "p99", "max", "bound")
			for _, r := range s.results {
				fmt.Fprintf(&report, "  %-24s %5d %9v %9v %9v %9v\n", r.attack, r.n,
					r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond),
					r.max.Round(100*time.Microsecond), r.bound.Round(time.Millisecond))
			}
		})
	}
	t.Log("\n" + report.String())
	// go test shows a passing test's log only with -v; CI asks for the
	// numbers in a file.
	if path := os.Getenv("CONDUIT_HOSTILE_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report.String()), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
}

// run runs one attack while the well-behaved client works, then checks its
// latency and, unless the attack stores on purpose, that the database is
// as it was. A p99 over the bound gets one more try where the attack can
// be repeated: on a shared machine a burst of other work can slow the two
// slowest of ~150 requests, while a real regression fails both tries.
func (s *suite) run(t *testing.T, a attack) {
	var r result
	for try := 1; ; try++ {
		r = s.attackOnce(t, a)
		if r.p99 <= r.bound || try == 2 || a.stores || a.once {
			break
		}
		t.Logf("p99 %v over the bound %v; once more", r.p99, r.bound)
	}
	s.results = append(s.results, r)
	if r.p99 > r.bound {
		t.Errorf("well-behaved client's p99 %v during the attack is over the bound %v (10× the unloaded p99 %v, at least %v)",
			r.p99, r.bound, s.unloaded, minBound)
	}
}

// attackOnce runs a once and measures the well-behaved client meanwhile.
func (s *suite) attackOnce(t *testing.T, a attack) result {
	before := s.state(t)
	stop := make(chan struct{})
	done := make(chan []time.Duration)
	go func() { done <- s.probe.until(t, stop) }()
	a.run(t, s)
	close(stop)
	lat := <-done
	// A round that failed half-way may have left the favorite.
	s.n.client(ipNormal).do(t, req{method: "DELETE", path: "/api/articles/" + s.f.slug + "/favorite", token: s.f.normal.token})

	if !a.stores {
		if after := s.state(t); !reflect.DeepEqual(after, before) {
			t.Errorf("the attack changed the database:\nbefore %+v\nafter  %+v", before, after)
		}
	}
	r := result{attack: a.name, n: len(lat), p50: percentile(lat, 0.5), p99: percentile(lat, 0.99),
		max: percentile(lat, 1), bound: max(10*s.unloaded, minBound)}
	t.Logf("well-behaved client during the attack: %d requests, p50 %v, p99 %v, max %v (unloaded p99 %v, bound %v)",
		r.n, r.p50, r.p99, r.max, s.unloaded, r.bound)
	return r
}

func (s *suite) state(t *testing.T) storetest.State {
	return storetest.ReadState(t, s.n.db, s.f.ids, s.f.slug)
}

// account is a user of the fixture.
type account struct {
	username, email, password, token string
	id                               int64
}

// fixture is what the node holds before the attacks.
type fixture struct {
	author, normal, victim, admin, elise account
	slug, bigSlug                        string // a small article; one of ~100 KB
	commentID                            int64
	ids                                  []int64 // the fixture's users, for storetest.ReadState
	// mallory is the signed-in attacker; her own things (not among ids)
	// are where requests that must change nothing may reach.
	mallory     account
	mallorySlug string
}

func newSuite(t *testing.T, dbURL string) *suite {
	n := startNode(t, dbURL)
	c := n.client(ipSetup)
	s := &suite{n: n}
	f := &s.f
	f.author = register(t, c, "alice", "alice@example.com")
	f.normal = register(t, c, "norm", "norm@example.com")
	f.victim = register(t, c, "victor", "victor@keep.example") // with a k, for the Kelvin sign
	f.admin = register(t, c, "admin", "admin@example.com")
	f.elise = register(t, c, "elise", "\u00e9lise@example.com") // é composed (NFC)
	for _, a := range []account{f.author, f.normal, f.victim, f.admin, f.elise} {
		f.ids = append(f.ids, a.id)
	}
	f.slug = createArticle(t, c, f.author.token, "Fixture article",
		"# A heading\n\nSome *emphasis*, a [link](https://example.com) and `code`.\n\n- one\n- two\n")
	f.bigSlug = createArticle(t, c, f.author.token, "Big article", strings.Repeat("Lorem ipsum dolor sit amet, consectetur. ", 2300))
	f.mallory = register(t, c, "mallory", "mallory@example.com")
	f.mallorySlug = createArticle(t, c, f.mallory.token, "Mallory's article", "mine")
	var cm struct{ Comment struct{ ID int64 } }
	decode(t, c.do(t, req{method: "POST", path: "/api/articles/" + f.slug + "/comments", token: f.author.token,
		body: `{"comment":{"body":"First!"}}`}), http.StatusOK, &cm)
	f.commentID = cm.Comment.ID

	s.probe = &probe{c: n.client(ipNormal), token: f.normal.token, slug: f.slug, author: f.author.username}
	s.probe.rounds(t, 3) // warm caches and connections
	lat := s.probe.rounds(t, 25)
	s.unloaded = percentile(lat, 0.99)
	t.Logf("well-behaved client, unloaded: %d requests, p50 %v, p99 %v, max %v",
		len(lat), percentile(lat, 0.5), s.unloaded, percentile(lat, 1))
	return s
}

// register signs a user up through the API; the password is derived from
// the name.
func register(t *testing.T, c *client, username, email string) account {
	t.Helper()
	a := account{username: username, email: email, password: "password-" + username}
	r := c.do(t, req{method: "POST", path: "/api/users", body: jsonBody(map[string]any{
		"user": map[string]string{"username": username, "email": email, "password": a.password}})})
	var u struct{ User struct{ Token string } }
	decode(t, r, http.StatusCreated, &u)
	a.token = u.User.Token
	claims, err := c.n.tokens.Verify(a.token)
	if err != nil {
		t.Fatalf("token of %s: %v", username, err)
	}
	a.id = claims.UserID
	return a
}

func createArticle(t *testing.T, c *client, token, title, body string) string {
	t.Helper()
	r := c.do(t, req{method: "POST", path: "/api/articles", token: token, body: jsonBody(map[string]any{
		"article": map[string]any{"title": title, "description": "about " + title, "body": body, "tagList": []string{"fixture"}}})})
	var a struct{ Article struct{ Slug string } }
	decode(t, r, http.StatusCreated, &a)
	return a.Article.Slug
}

// decode checks r's status and decodes its JSON body into v (unless nil),
// failing t at once: the fixture and the steps that later ones depend on
// use it.
func decode(t *testing.T, r reply, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want %d", r, status)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r, err)
		}
	}
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
