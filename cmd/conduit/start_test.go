package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// statusOf answers the status of GET base+path (-1 if there is no answer)
// and the Retry-After header.
func statusOf(t *testing.T, base, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(base + path)
	if err != nil {
		return -1, ""
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After")
}

// waitStatus polls GET base+path until it answers want.
func waitStatus(t *testing.T, base, path string, want int, within time.Duration, logs *syncBuffer) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if got, _ := statusOf(t, base, path); got == want {
			return
		}
		if time.Since(start) > within {
			t.Fatalf("%s did not answer %d within %v:\n%s", path, want, within, logs)
		}
	}
}

// wantWaiting checks what a server waiting for its database answers:
// alive, not ready, and 503 with Retry-After for the API and the site.
func wantWaiting(t *testing.T, base string) {
	t.Helper()
	if st, _ := statusOf(t, base, "/healthz"); st != http.StatusOK {
		t.Errorf("/healthz while waiting = %d, want 200", st)
	}
	if st, _ := statusOf(t, base, "/readyz"); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz while waiting = %d, want 503", st)
	}
	for _, p := range []string{"/api/tags", "/"} {
		if st, retry := statusOf(t, base, p); st != http.StatusServiceUnavailable || retry == "" {
			t.Errorf("%s while waiting = %d (Retry-After %q), want 503 with Retry-After", p, st, retry)
		}
	}
}

// A PostgreSQL that comes up after Conduit: serve waits for it (alive, not
// ready, the attempts logged without the password), then migrates, becomes
// ready and serves. An error that waiting cannot fix ends serve at once.
func TestServeWaitsForPostgres(t *testing.T) {
	t.Parallel() // nothing shared: its own databases (and servers)
	pg := storetest.StartCluster(t)
	pg.Stop()
	// Trust authentication ignores the password; it is there to prove the
	// logs mask it.
	url := strings.Replace(pg.URL("postgres"), "postgres@", "postgres:s3cret-pw@", 1)
	base, logs := serveInProcessUntil(t, "listening", "--database-url", url, "--db-connect-timeout", "1s")

	wantWaiting(t, base)
	for start := time.Now(); !strings.Contains(logs.String(), `"attempt":2`); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no second connection attempt logged:\n%s", logs)
		}
	}
	wantWaiting(t, base)

	pg.Start()
	waitStatus(t, base, "/readyz", http.StatusOK, 30*time.Second, logs)
	c := newClient(t, base)
	c.register("late")
	if st, _ := c.get("/"); st != http.StatusOK {
		t.Errorf("home page once ready = %d", st)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"database unavailable; waiting for it"`, `postgres:***@127.0.0.1:` + strconv.Itoa(pg.Port),
		`"msg":"database connected"`, `"msg":"migrated database"`, `"msg":"ready"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret-pw") {
		t.Errorf("logs show the database password:\n%s", out)
	}

	// An unknown database does not come by waiting: serve fails at once.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out2 syncBuffer
	err := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "json",
		"--database-url", pg.URL("no_such_db")}, func(string) string { return "" }, &out2, &out2)
	if err == nil || !strings.Contains(err.Error(), "no_such_db") || ctx.Err() != nil {
		t.Errorf("serve on an unknown database = %v, want a prompt error naming it\n%s", err, &out2)
	}
	if strings.Contains(out2.String(), "waiting for it") {
		t.Errorf("serve waited for an unknown database:\n%s", &out2)
	}
}

// SIGTERM while serve waits for its database ends the process cleanly.
func TestSIGTERMWhileWaitingForDatabase(t *testing.T) {
	t.Parallel() // nothing shared: its own databases (and servers)
	// A port on which nothing listens.
	port := testproc.FreePort(t)
	url := "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/conduit?sslmode=disable"
	p := startBinaryUntil(t, "listening", t.TempDir(), "--database-url", url)
	// Until the first attempt has failed and the wait is logged: a SIGTERM
	// before it would test the shutdown of a server still connecting.
	testproc.Wait(t, 30*time.Second, "the wait for the database logged", func() error {
		if !strings.Contains(p.logs.String(), "database unavailable; waiting for it") {
			return errors.New("not yet")
		}
		return nil
	})
	wantWaiting(t, p.base)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Errorf("exit after SIGTERM while waiting: %v, want status 0\n%s", err, p.logs)
	}
	if !strings.Contains(p.logs.String(), "database unavailable; waiting for it") {
		t.Errorf("the wait was not logged:\n%s", p.logs)
	}
}
