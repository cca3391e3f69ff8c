// Package deploy holds no code: its test checks that the monitoring
// artifacts beside it (the Grafana dashboard and the Prometheus rules) only
// query metrics that running Conduit nodes really export.
package deploy

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/queue/natstest"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// TestQueriesNameExportedMetrics builds conduit, starts it on SQLite and
// with every later tier (replicas, Redis, NATS), makes every metric family
// have samples, scrapes it, and checks every metric named in
// deploy/grafana/conduit.json and deploy/prometheus/alerts.yml against the
// scrapes. Names Prometheus makes itself (up) and the recording rules of
// alerts.yml are allowed too.
func TestQueriesNameExportedMetrics(t *testing.T) {
	dashboard := dashboardQueries(t, "grafana/conduit.json")
	rules, records := ruleQueries(t, "prometheus/alerts.yml")

	exported := scrapeLiveNodes(t)
	known := map[string]bool{"up": true}
	for _, r := range records {
		known[r] = true
	}
	for name := range exported {
		known[name] = true
	}
	for _, set := range []struct {
		file    string
		queries []string
	}{{"grafana/conduit.json", dashboard}, {"prometheus/alerts.yml", rules}} {
		for _, q := range set.queries {
			names := metricNames(q)
			if len(names) == 0 && !strings.HasPrefix(q, "vector(") {
				t.Errorf("%s: no metric found in %q", set.file, q)
			}
			for _, n := range names {
				if !known[n] {
					t.Errorf("%s: %q is not exported by a running node nor recorded by a rule (query %q)", set.file, n, q)
				}
			}
		}
	}
}

// TestDashboardLayout checks the dashboard's shape: one row per tier,
// unique panel ids, every query panel on the data source variable.
func TestDashboardLayout(t *testing.T) {
	var d struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	readJSON(t, "grafana/conduit.json", &d)
	if d.UID == "" {
		t.Error("dashboard has no uid")
	}
	var rows []string
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if len(p.Targets) > 0 && p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q queries data source %q, want ${datasource}", p.Title, p.Datasource.UID)
		}
	}
	for _, tier := range []string{"HTTP", "Go runtime", "Database", "Cache", "Queue"} {
		if !slices.ContainsFunc(rows, func(r string) bool { return strings.HasPrefix(r, tier) }) {
			t.Errorf("no row for the %s tier (rows: %q)", tier, rows)
		}
	}
}

func TestMetricNames(t *testing.T) {
	for _, c := range []struct {
		query string
		want  []string
	}{
		{`sum by (job) (rate(a_total{job="conduit",route!~"GET /(healthz|readyz)"}[5m])) / on (job) b:ratio > 1e3`, []string{"a_total", "b:ratio"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{instance=~"$instance"}[$__rate_interval])))`, []string{"h_bucket"}},
		{`absent(up{job="x"} == 1) or vector(0.001)`, []string{"up"}},
		{`x and on (instance) y unless ignoring(code) group_left (route) z offset 5m`, []string{"x", "y", "z"}},
		{`count(process_open_fds) >= bool 0.5`, []string{"process_open_fds"}},
	} {
		if got := metricNames(c.query); !slices.Equal(got, c.want) {
			t.Errorf("metricNames(%q) = %q, want %q", c.query, got, c.want)
		}
	}
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // inside collapsed rows
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s is not valid JSON: %v", path, err)
	}
}

// dashboardQueries returns the PromQL of every panel and of the query
// variables.
func dashboardQueries(t *testing.T, path string) []string {
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"` // an object or, in older dashboards, a string
			} `json:"list"`
		} `json:"templating"`
	}
	readJSON(t, path, &d)
	var qs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				qs = append(qs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			var q struct{ Query string }
			if json.Unmarshal(v.Query, &q) != nil {
				t.Fatalf("%s: variable query %s is not an object", path, v.Query)
			}
			// label_values(SELECTOR, label): the selector is PromQL.
			qs = append(qs, labelValuesSelector(q.Query))
		}
	}
	if len(qs) < 10 {
		t.Fatalf("%s: only %d queries found", path, len(qs))
	}
	return qs
}

// labelValuesSelector returns SELECTOR of label_values(SELECTOR, label).
func labelValuesSelector(q string) string {
	q = strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
	if i := strings.LastIndex(q, ","); i > 0 {
		q = q[:i]
	}
	return q
}

// ruleQueries reads the expr of every rule in a Prometheus rule file, and
// the names the recording rules define. The file is YAML; this reads the
// two shapes it uses ("expr: QUERY" and "expr: |" with an indented block)
// and cross-checks the count against the rules, so a missed one fails.
func ruleQueries(t *testing.T, path string) (exprs, records []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	rules := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		field := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- "))
		switch {
		case strings.HasPrefix(field, "record:"):
			records = append(records, strings.TrimSpace(strings.TrimPrefix(field, "record:")))
			rules++
		case strings.HasPrefix(field, "alert:"):
			rules++
		case strings.HasPrefix(field, "expr:"):
			rest := strings.TrimSpace(strings.TrimPrefix(field, "expr:"))
			if rest != "|" && rest != "|-" {
				exprs = append(exprs, rest)
				continue
			}
			indent := len(line) - len(strings.TrimLeft(line, " "))
			var block []string
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent) {
				i++
				block = append(block, lines[i])
			}
			exprs = append(exprs, strings.Join(block, "\n"))
		}
	}
	if rules == 0 || len(exprs) != rules {
		t.Fatalf("%s: %d rules but %d expressions read", path, rules, len(exprs))
	}
	return exprs, records
}

var (
	promStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promVars     = regexp.MustCompile(`\$\{?\w+\}?`)
	promNumbers  = regexp.MustCompile(`(^|[^\w:.])[0-9][0-9a-zA-Z.]*`) // also 1e3, 5m, 0x1f
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true}
)

// metricNames lists the metric names a PromQL expression selects, in order
// of first use: what is left once strings, label matchers, ranges, grouping
// labels, numbers and variables are removed, except function names (an
// identifier followed by a parenthesis) and keywords.
func metricNames(q string) []string {
	q = promStrings.ReplaceAllString(q, `""`)
	q = promMatchers.ReplaceAllString(q, " ")
	q = promGrouping.ReplaceAllString(q, " ")
	q = promVars.ReplaceAllString(q, " ")
	q = promNumbers.ReplaceAllString(q, "$1 ")
	var names []string
	for _, m := range promIdent.FindAllString(q, -1) {
		if strings.HasSuffix(m, "(") || promKeywords[strings.ToLower(m)] || slices.Contains(names, m) {
			continue
		}
		names = append(names, m)
	}
	return names
}

// conduitBin is the program whose metrics are checked, built once for the
// test run (testproc.Shared).
var conduitBin = testproc.Binary{Pkg: testproc.ConduitPkg}

// scrapeLiveNodes builds conduit and returns the metric names its
// processes export when every tier is on, from two nodes:
//
//   - stage 1: SQLite, default flags (cache and limiter on), serving the
//     HTML site, the API and readiness;
//   - stages 4, 5 and 7 at once: a throwaway PostgreSQL primary with a
//     streaming replica (--replica-urls), a throwaway Redis (--cache-url)
//     and NATS (--queue-url), a write whose job runs through the stream,
//     then Redis paused until the node counts errors and bypassed reads.
//
// So every name a rule or a panel uses is checked against a real exporter,
// including the vectors that only have samples once something happened.
func scrapeLiveNodes(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	bin := conduitBin.Path(t)
	names := map[string]bool{}
	add := func(metrics string) {
		for line := range strings.SplitSeq(metrics, "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		}
	}

	base, admin := startNode(t, bin, "--data-dir", filepath.Join(dir, "stage1"))
	for _, path := range []string{"/", "/api/tags", "/api/articles", "/readyz"} {
		get(t, base+path)
	}
	add(get(t, admin+"/metrics"))

	primary := storetest.StartCluster(t, "synchronous_commit=on")
	primary.CreateDatabase("conduit")
	replica := primary.StartReplica()
	rs := redistest.Start(t)
	ns := natstest.Start(t)
	base, admin = startNode(t, bin, "--data-dir", filepath.Join(dir, "full"),
		"--database-url", primary.URL("conduit"), "--replica-urls", replica.URL("conduit"),
		"--cache-url", rs.URL(), "--queue-url", ns.URL, "--workers", "1", "--bcrypt-cost", "4")
	token := post(t, base+"/api/users", "", `{"user":{"username":"ops","email":"ops@example.com","password":"password1"}}`, "token")
	slug := post(t, base+"/api/articles", token, `{"article":{"title":"Watched","description":"d","body":"b"}}`, "slug")
	// The article's job runs through the stream; reads fill the cache.
	metrics := waitMetrics(t, func() { get(t, base+"/api/articles/"+slug) }, admin,
		"conduit_job_duration_seconds_bucket", "conduit_jobs_stream_pending", "conduit_cache_tier_lookups_total",
		"conduit_db_replica_lag_seconds", "conduit_db_pool_acquires_total")
	add(metrics)
	rs.Pause()
	defer rs.Resume()
	add(waitMetrics(t, func() { get(t, base+"/api/articles/"+slug) }, admin,
		"conduit_cache_redis_errors_total", "conduit_cache_bypassed_total"))
	return names
}

// startNode starts conduit serve with args on a random port and a random
// admin port, waits until it is ready, and returns both base URLs.
func startNode(t *testing.T, bin string, args ...string) (base, admin string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--log-format", "json"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	// The public listener logs "listening"; metrics are on the private
	// admin listener ("serving metrics on the admin listener").
	addrs := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var public, admin string
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			switch {
			case l.Msg == "listening":
				public = l.Addr
			case strings.Contains(l.Msg, "admin listener"):
				admin = l.Addr
			}
			if public != "" && admin != "" {
				addrs <- [2]string{public, admin}
				public, admin = "", "-" // send once
			}
		}
	}()
	select {
	case a := <-addrs:
		base, admin = "http://"+a[0], "http://"+a[1]
	case <-time.After(30 * time.Second):
		t.Fatal("conduit did not log its listening and admin addresses within 30 s")
	}
	// A node may listen before it is ready (migrations on start).
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not ready within 30 s", base)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return base, admin
}

// waitMetrics calls poke and scrapes admin until every name in want has a
// sample (at most 30 s), and returns the last scrape.
func waitMetrics(t *testing.T, poke func(), admin string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		poke()
		metrics := get(t, admin+"/metrics")
		missing := slices.DeleteFunc(slices.Clone(want), func(n string) bool {
			return strings.Contains(metrics, "\n"+n+"{") || strings.Contains(metrics, "\n"+n+" ")
		})
		if len(missing) == 0 {
			return metrics
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the node still exports no %q", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends body as JSON and returns the string field of the answer's
// only object ({"user": {"token": …}}).
func post(t *testing.T, url, token, body, field string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %s, %v", url, resp.Status, err)
	}
	for _, obj := range out {
		if v, ok := obj[field].(string); ok {
			return v
		}
	}
	t.Fatalf("POST %s: no %s in the answer", url, field)
	return ""
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}
