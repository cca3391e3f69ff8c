//go:build linux

package cdndrill

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
	"github.com/conduit-dev/conduit/internal/varnishtest"
)

// gate skips a drill unless CI=true or CONDUIT_CDN_DRILL=1: they build the
// binary and start real processes.
func gate(t *testing.T) {
	t.Helper()
	if os.Getenv("CI") != "true" && os.Getenv("CONDUIT_CDN_DRILL") == "" {
		t.Skip("the CDN drills run with CI=true or CONDUIT_CDN_DRILL=1 (need varnishd, haproxy and PostgreSQL)")
	}
	varnishtest.Binary(t)
	testproc.LoadShared(t)
}

// conduitBin is the binary under test, built once for all the drills
// (testproc.Shared).
var conduitBin = testproc.Binary{Pkg: testproc.ConduitPkg}

// TestMain drops the PostgreSQL template database the tests made.
func TestMain(m *testing.M) {
	storetest.Main(m)
}

// startProc starts a node or the balancer; it is killed when the test ends.
func startProc(t *testing.T, name, logPath string, env []string, argv ...string) *testproc.Proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	return testproc.Start(t, name, logPath, cmd)
}

// cluster is Conduit behind Varnish: one node on SQLite (Varnish in front
// of it), or nodes on PostgreSQL behind HAProxy (Varnish in front of that).
type cluster struct {
	t       *testing.T
	dir     string
	env     []string
	backend string // what Varnish forwards to
	nodes   []*testproc.Proc
	ports   []int
	admin   []int // each node's --admin-addr port (metrics)
	edge    *varnishtest.Varnish
	maxAge  string
	bins    []string // binary per node
}

// newCluster starts the database side, the nodes (binary per node: bins,
// or the built one) and Varnish. maxAge is --shared-max-age.
func newCluster(t *testing.T, db string, nodes int, maxAge string, bins ...string) *cluster {
	t.Helper()
	dir := testproc.LogDir(t, "conduit-cdndrill-")
	var key [32]byte
	rand.Read(key[:])
	c := &cluster{t: t, dir: dir, maxAge: maxAge,
		env: append(os.Environ(), "CONDUIT_JWT_KEYS=k1:"+base64.StdEncoding.EncodeToString(key[:]))}
	for i := range nodes {
		c.ports = append(c.ports, testproc.FreePort(t))
		c.admin = append(c.admin, testproc.FreePort(t))
		if i < len(bins) {
			c.bins = append(c.bins, bins[i])
		} else {
			c.bins = append(c.bins, conduitBin.Path(t))
		}
	}
	c.nodes = make([]*testproc.Proc, nodes)
	edgePort := testproc.FreePort(t)
	switch db {
	case "sqlite":
		if nodes != 1 {
			t.Fatal("SQLite serves one node")
		}
		c.env = append(c.env, "CONDUIT_DATA_DIR="+filepath.Join(dir, "data"))
	case "postgres":
		url := storetest.NewPostgresDatabase(t)
		c.env = append(c.env, "CONDUIT_DATABASE_URL="+url)
		cmd := exec.Command(c.bins[0], "migrate")
		cmd.Env = c.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
	}
	c.env = append(c.env, fmt.Sprintf("CONDUIT_EDGE_PURGE_URL=http://127.0.0.1:%d/", edgePort))
	for i := range c.ports {
		c.startNode(i)
	}
	for i := range c.ports {
		testproc.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", c.ports[i]), 30*time.Second)
	}
	c.backend = fmt.Sprintf("127.0.0.1:%d", c.ports[0])
	if db == "postgres" {
		c.backend = c.startHAProxy()
	}
	c.edge = varnishtest.Start(t, c.backend, edgePort)
	return c
}

func (c *cluster) startNode(i int) {
	c.nodes[i] = startProc(c.t, fmt.Sprintf("node%d", i+1), filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)), c.env,
		c.bins[i], "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", c.ports[i]), "--bcrypt-cost", "4",
		"--trusted-proxies", "127.0.0.1", "--shared-max-age", c.maxAge, "--log-format", "json",
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", c.admin[i]))
}

// purgesSettled waits until no node has an edge purge pending or about to
// be repeated: nothing pending, and no purge sent for longer than the
// nodes' repeat delay (2 s), so that a purge of an earlier write cannot
// land between a test's reads.
func (c *cluster) purgesSettled(t *testing.T) {
	t.Helper()
	const quiet = 2500 * time.Millisecond
	last, lastPending, since := -1.0, 0.0, time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		sent, pending := 0.0, 0.0
		for _, p := range c.admin {
			m := scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p))
			sent += m["conduit_edge_purge_requests_total"]
			pending += m["conduit_edge_purge_pending_keys"]
		}
		lastPending = pending
		if sent != last || pending > 0 {
			last, since = sent, time.Now()
			continue
		}
		if time.Since(since) >= quiet {
			return
		}
	}
	t.Fatalf("the nodes' edge purges did not settle within 30 s (purges sent: %v, keys pending: %v)", last, lastPending)
}

// scrape reads a Prometheus text page and sums each metric over its
// labels.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	r := do(t, "GET", url, nil)
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d", url, r.status)
	}
	sums := map[string]float64{}
	for line := range strings.Lines(r.body) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		// name{labels} value, or name value
		line = strings.TrimSpace(line)
		name := line[:strings.IndexAny(line+" ", "{ ")]
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sums[name] += v
		}
	}
	return sums
}

// startHAProxy runs the shipped HAProxy template in front of the nodes and
// returns its address.
func (c *cluster) startHAProxy() string {
	t := c.t
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed (apt-get install haproxy)")
	}
	tmpl, err := os.ReadFile("../../deploy/haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	lb, stats := testproc.FreePort(t), testproc.FreePort(t)
	var servers []string
	for i, p := range c.ports {
		servers = append(servers, fmt.Sprintf("    server node%d 127.0.0.1:%d", i+1, p))
	}
	cfg := strings.NewReplacer("@LISTEN@", fmt.Sprintf("127.0.0.1:%d", lb), "@STATS@", fmt.Sprintf("127.0.0.1:%d", stats),
		"\n@SERVERS@\n", "\n"+strings.Join(servers, "\n")+"\n").Replace(string(tmpl))
	path := filepath.Join(c.dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startProc(t, "haproxy", filepath.Join(c.dir, "haproxy.log"), nil, bin, "-db", "-f", path)
	addr := fmt.Sprintf("127.0.0.1:%d", lb)
	testproc.WaitHTTP(t, "http://"+addr+"/readyz", 20*time.Second)
	return addr
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   string
}

// client talks to the edge without following redirects or decompressing.
var client = &http.Client{
	Timeout:       10 * time.Second,
	Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends a request; hdr are name, value pairs.
func do(t *testing.T, method, url string, body any, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: string(b)}
}

// user is a signed-up account.
type user struct {
	name, token string
}

// signUp registers through the edge (a POST: passed to Conduit).
func (c *cluster) signUp(t *testing.T, name string) user {
	t.Helper()
	r := do(t, "POST", c.edge.URL+"/api/users", map[string]any{"user": map[string]string{
		"username": name, "email": name + "@example.com", "password": "password1"}})
	var out struct {
		User struct{ Token string } `json:"user"`
	}
	if r.status != http.StatusCreated || json.Unmarshal([]byte(r.body), &out) != nil {
		t.Fatalf("sign up %s: %d %s", name, r.status, r.body)
	}
	return user{name: name, token: out.User.Token}
}

// api sends an API request as u through the edge and wants status.
func (c *cluster) api(t *testing.T, u user, method, path string, body any, status int) reply {
	t.Helper()
	r := do(t, method, c.edge.URL+path, body, "Authorization", "Token "+u.token)
	if r.status != status {
		t.Fatalf("%s %s as %s: %d %s", method, path, u.name, r.status, r.body)
	}
	return r
}

// publish writes an article and returns its slug.
func (c *cluster) publish(t *testing.T, u user, title string, tags ...string) string {
	t.Helper()
	r := c.api(t, u, "POST", "/api/articles", map[string]any{"article": map[string]any{
		"title": title, "description": "about " + title, "body": "Body of " + title, "tagList": tags}}, http.StatusCreated)
	var out struct {
		Article struct{ Slug string } `json:"article"`
	}
	json.Unmarshal([]byte(r.body), &out)
	return out.Article.Slug
}
