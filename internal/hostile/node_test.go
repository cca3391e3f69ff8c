//go:build linux

package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// conduitBin is cmd/conduit, built once for the whole test binary: the
// suite attacks the program as it ships, not a handler assembled by a
// test.
var conduitBin = testproc.Binary{Pkg: testproc.ConduitPkg}

func TestMain(m *testing.M) {
	storetest.Main(m) // drops the PostgreSQL template database of the run
}

// node is one `conduit serve` process with default settings, and the test's
// own view of its database (to prove that nothing was stored) and of its
// signing key (to make tokens for users who do not exist).
type node struct {
	base    string // http://127.0.0.1:port
	addr    string // 127.0.0.1:port
	dataDir string
	logPath string
	db      *store.DB
	tokens  *auth.Tokens // the node's signing key, for tokens the node never issued
	keys    []auth.Key
	proc    *testproc.Proc
}

// startNode runs `conduit serve` on a port the kernel picks, on SQLite in a
// fresh data dir when dbURL is empty, else on that PostgreSQL database.
// Nothing is configured beyond where to listen, where the data lives and
// the log format (JSON, which the test reads): every limit is the default.
func startNode(t *testing.T, dbURL string) *node {
	t.Helper()
	bin := conduitBin.Path(t)
	dir := t.TempDir()
	n := &node{dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "conduit.log")}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", n.dataDir, "--log-format", "json"}
	if dbURL != "" {
		args = append(args, "--database-url", dbURL)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	n.proc = testproc.Start(t, "conduit serve", n.logPath, cmd)
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("server log (last lines):\n%s", tail(n.logPath, 40))
		}
	})

	n.addr = n.waitListening(t, 30*time.Second)
	n.base = "http://" + n.addr
	n.proc.WaitReady(t, 60*time.Second, testproc.HTTPOK(n.base+"/readyz"))

	var err error
	ctx := context.Background()
	if dbURL == "" {
		n.db, err = store.OpenSQLite(ctx, filepath.Join(n.dataDir, "conduit.db"))
	} else {
		n.db, err = store.OpenPostgres(ctx, dbURL, store.PostgresOptions{MaxConns: 2})
	}
	if err != nil {
		t.Fatalf("open the node's database: %v", err)
	}
	t.Cleanup(func() { n.db.Close() })
	keys, err := auth.LoadOrCreateKeyFile(filepath.Join(n.dataDir, "jwt.keys"))
	if err != nil {
		t.Fatal(err)
	}
	n.keys = keys
	if n.tokens, err = auth.NewTokens(keys, time.Hour); err != nil {
		t.Fatal(err)
	}
	return n
}

// cleanEnv is the test's environment without any CONDUIT_ variable, so the
// node runs with the defaults whatever the shell has set.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONDUIT_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitListening reads the address the node listens on from its log.
func (n *node) waitListening(t *testing.T, within time.Duration) (addr string) {
	t.Helper()
	n.proc.WaitReady(t, within, func() error {
		for _, e := range n.logEntries(t) {
			if a, ok := e["addr"].(string); ok && e["msg"] == "listening" {
				addr = a
				return nil
			}
		}
		return errors.New("no \"listening\" line in its log")
	})
	return addr
}

// stop ends the node with SIGTERM, and SIGKILL if it lingers.
func (n *node) stop(t *testing.T) {
	if ended, err := n.proc.Exited(); ended {
		t.Errorf("conduit serve had exited before the test ended: %v", err)
		return
	}
	n.proc.Signal(syscall.SIGTERM)
	if err := n.proc.Wait(30 * time.Second); err != nil {
		if ended, _ := n.proc.Exited(); !ended {
			n.proc.Kill()
			t.Errorf("conduit serve did not stop within 30 s of SIGTERM")
			return
		}
		t.Errorf("conduit serve exited with %v after SIGTERM", err)
	}
}

// logEntries parses the node's JSON log.
func (n *node) logEntries(t *testing.T) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for line := range bytes.Lines(b) {
		var e map[string]any
		if json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// checkLog fails t for every request the node answered with a 5xx (but
// /readyz before the node was ready), logged an error about, or panicked
// on: this covers the answers no client read (the never-reading clients,
// the connections closed mid-body).
func (n *node) checkLog(t *testing.T) (requests int) {
	t.Helper()
	bad, shed := 0, 0
	entries := n.logEntries(t)
	shedIDs := map[string]bool{} // request ids of the limiter's error lines
	for _, e := range entries {
		if id, _ := e["request_id"].(string); overloaded(e) && id != "" {
			shedIDs[id] = true
		}
	}
	for _, e := range entries {
		h, _ := e["http"].(map[string]any)
		if h != nil {
			requests++
		}
		status, _ := h["status"].(float64)
		if h["route"] == "GET /readyz" {
			continue // not ready while starting: a 503 is its answer
		}
		// An attacker's request shed by the overload limiter (503 with
		// Retry-After) is the limiter doing its job when the machine is
		// busy, not an input that broke something; the well-behaved
		// client's requests must never be shed (its own checks fail).
		if overloaded(e) {
			continue // judged by its request line
		}
		if id, _ := h["request_id"].(string); status == 503 && h["client_ip"] != ipNormal && shedIDs[id] {
			shed++
			continue
		}
		if status >= 500 || e["level"] == "ERROR" || e["msg"] == "panic" {
			if bad++; bad <= 20 {
				line, _ := json.Marshal(e)
				t.Errorf("server log: %s", line)
			}
		}
	}
	if bad > 20 {
		t.Errorf("server log: %d bad entries in all", bad)
	}
	if shed > 0 {
		t.Logf("%d attacker requests shed by the overload limiter (503 with Retry-After)", shed)
	}
	return requests
}

// overloaded reports the error line the limiter logs for a shed request.
func overloaded(e map[string]any) bool {
	return e["msg"] == "request failed" && e["error"] == "the server is overloaded; try again in a moment"
}

func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// client is an HTTP client with its own loopback source address
// (127.0.0.0/8 is all local on Linux), so that the node, which believes no
// proxy by default, sees each client as a different address: the attacker's
// throttling does not reach the well-behaved client.
type client struct {
	n  *node
	ip string
	hc *http.Client
}

func (n *node) client(ip string) *client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 32, DisableCompression: true}
	return &client{n: n, ip: ip, hc: &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		// The site's answers are 303s; they are results, not detours.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *client) dialer() *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.ip)}, Timeout: 5 * time.Second}
}

// req is one request; ctype defaults to JSON under /api and to a form
// elsewhere when there is a body.
type req struct {
	method, path, body string
	ctype              string
	token              string // Authorization: Token …
	cookie             string // the site's session cookie
	header             map[string]string
}

// reply is an answer.
type reply struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (r reply) String() string {
	b := r.body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%d %s", r.status, b)
}

// sessionCookie is the site's cookie name (internal/web).
const sessionCookie = "conduit_session"

// do sends q and returns the answer. Every answer is checked: a 5xx, or
// no answer at all, fails the test.
func (c *client) do(t testing.TB, q req) reply {
	t.Helper()
	r, err := c.try(q)
	if err != nil {
		t.Errorf("%s %.200q: %v", q.method, q.path, err)
		return reply{}
	}
	if r.status >= 500 {
		t.Errorf("%s %.200q (body %.100q): %s", q.method, q.path, q.body, r)
	}
	return r
}

// try is do without the checks.
func (c *client) try(q req) (reply, error) {
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	hr, err := http.NewRequest(q.method, c.n.base+q.path, body)
	if err != nil {
		return reply{}, err
	}
	ctype := q.ctype
	if ctype == "" && q.body != "" {
		ctype = "application/x-www-form-urlencoded"
		if strings.HasPrefix(q.path, "/api/") {
			ctype = "application/json"
		}
	}
	if ctype != "" {
		hr.Header.Set("Content-Type", ctype)
	}
	if q.token != "" {
		hr.Header.Set("Authorization", "Token "+q.token)
	}
	if q.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: q.cookie})
	}
	for k, v := range q.header {
		hr.Header.Set(k, v)
	}
	start := time.Now()
	res, err := c.hc.Do(hr)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: res.StatusCode, header: res.Header, body: b, took: time.Since(start)}, nil
}

// raw sends the bytes of a request exactly as given, on a connection of
// its own (for what net/http refuses to send: bytes that are not text in
// the request line and headers, broken framing), and reads one answer.
func (c *client) raw(t testing.TB, request string) reply {
	t.Helper()
	conn, err := c.dialer().Dial("tcp", c.n.addr)
	if err != nil {
		t.Errorf("dial: %v", err)
		return reply{}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Errorf("write %.100q: %v", request, err)
		return reply{}
	}
	method, _, _ := strings.Cut(request, " ")
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Errorf("%.200q: no answer: %v", request, err)
		return reply{}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, header: res.Header, body: b, took: time.Since(start)}
	if r.status >= 500 {
		t.Errorf("%.300q: %s", request, r)
	}
	return r
}

// rawRequest is a request's bytes, with Host, Connection: close and a
// Content-Length for body.
func rawRequest(method, target string, headers []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: conduit.test\r\nConnection: close\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" || method == "POST" || method == "PUT" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return b.String()
}
