package store_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/server"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// failFast is how long a request may take to fail while the database is
// gone: the pool's connect timeout plus the statement timeout used below,
// with room for a slow shared machine.
const failFast = 8 * time.Second

// Conduit keeps running while its PostgreSQL server hangs (network black
// hole), then stops and comes back: requests fail with 503 within a bounded
// time, /readyz says not ready, and everything recovers without a restart.
func TestPostgresOutageAndRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	t.Parallel()

	cl := storetest.StartCluster(t)
	cl.CreateDatabase("conduit")
	proxy := newFreezeProxy(t, fmt.Sprintf("127.0.0.1:%d", cl.Port))

	url := fmt.Sprintf("postgres://postgres@%s/conduit?sslmode=disable", proxy.addr())
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{
		MaxConns: 8, StatementTimeout: 2 * time.Second, ConnectTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keys := []auth.Key{{ID: "k1", Secret: bytes.Repeat([]byte("s"), 32)}}
	tokens, err := auth.NewTokens(keys, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svc := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
	srv := server.New(server.Deps{
		API: api.New(svc, tokens), DB: db,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: prometheus.NewRegistry(),
	})
	srv.MarkReady()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	c := &client{t: t, base: hs.URL}

	// Healthy: sign up, write, read.
	var reg struct{ User struct{ Token string } }
	c.want(http.StatusCreated, "POST", "/api/users", `{"user":{"username":"ops","email":"ops@example.com","password":"password1"}}`, &reg)
	c.token = reg.User.Token
	c.want(http.StatusCreated, "POST", "/api/articles", article("before"), nil)
	c.want(http.StatusOK, "GET", "/readyz", "", nil)
	c.want(http.StatusOK, "GET", "/api/articles", "", nil)

	outage := func(name string) {
		t.Helper()
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/api/articles", ""},
			{"GET", "/api/articles/feed", ""},
			{"POST", "/api/articles", article("during-" + name)},
			{"POST", "/api/users/login", `{"user":{"email":"ops@example.com","password":"password1"}}`},
			{"GET", "/readyz", ""},
		} {
			start := time.Now()
			status := c.do(r.method, r.path, r.body, nil)
			if took := time.Since(start); status != http.StatusServiceUnavailable || took > failFast {
				t.Fatalf("%s: %s %s = %d after %v; want 503 within %v", name, r.method, r.path, status, took, failFast)
			}
		}
	}
	recovered := func(name string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for c.do("GET", "/readyz", "", nil) != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz not OK 30s after the database came back", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.want(http.StatusCreated, "POST", "/api/articles", article("after-"+name), nil)
		var list struct{ ArticlesCount int }
		c.want(http.StatusOK, "GET", "/api/articles", "", &list)
		c.want(http.StatusOK, "POST", "/api/users/login", `{"user":{"email":"ops@example.com","password":"password1"}}`, nil)
		if list.ArticlesCount == 0 {
			t.Fatalf("%s: no articles after recovery", name)
		}
	}

	// 1. The network swallows everything: pooled connections hang, new ones
	// cannot be set up. Only client-side deadlines help here.
	proxy.freeze()
	outage("black hole")
	proxy.thaw()
	recovered("black hole")

	// 2. The server stops (connections refused).
	cl.Stop()
	outage("stopped")
	cl.Start()
	recovered("stopped")

	var list struct{ ArticlesCount int }
	c.want(http.StatusOK, "GET", "/api/articles", "", &list)
	if list.ArticlesCount != 3 { // before, after-black hole, after-stopped
		t.Fatalf("articlesCount = %d, want 3 (no write during the outage may have landed)", list.ArticlesCount)
	}
}

func article(title string) string {
	return fmt.Sprintf(`{"article":{"title":%q,"description":"d","body":"b","tagList":["ops"]}}`, title)
}

type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *client) do(method, path, body string, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewBufferString(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Token "+c.token)
	}
	hc := http.Client{Timeout: 60 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func (c *client) want(status int, method, path, body string, out any) {
	c.t.Helper()
	if got := c.do(method, path, body, out); got != status {
		c.t.Fatalf("%s %s = %d, want %d", method, path, got, status)
	}
}

// freezeProxy forwards TCP to a target and can freeze: bytes stop flowing
// both ways and new connections are accepted but never answered, like a
// network that drops every packet.
type freezeProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	conns  []net.Conn
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) freeze() { p.mu.Lock(); p.frozen = true; p.mu.Unlock() }

func (p *freezeProxy) thaw() {
	p.mu.Lock()
	p.frozen = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// wait blocks while frozen; it reports false once the proxy is closed.
func (p *freezeProxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen && p.ln != nil {
		p.cond.Wait()
	}
	return p.ln != nil
}

func (p *freezeProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *freezeProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(in)
		go func() {
			if !p.wait() {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				return
			}
			p.track(out)
			go p.pipe(out, in)
			p.pipe(in, out)
		}()
	}
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezeProxy) close() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := p.conns
	p.cond.Broadcast()
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
}
