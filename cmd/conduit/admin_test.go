package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// listenerAddr finds the address of a private listener (what: "admin
// listener", "debug listener") in the JSON log.
func listenerAddr(t *testing.T, logs, what string) string {
	t.Helper()
	if a := privateAddr(logs, what); a != "" {
		return a
	}
	t.Fatalf("no %s in the log:\n%s", what, logs)
	return ""
}

func privateAddr(logs, what string) string {
	for _, line := range strings.Split(logs, "\n") {
		var l struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && strings.Contains(l.Msg, what) {
			return l.Addr
		}
	}
	return ""
}

// Metrics are served on the admin listener only; --debug-addr naming the
// same address adds the profiles to it.
func TestAdminListener(t *testing.T) {
	base, logs := serveInProcess(t, "--admin-addr", "127.0.0.1:0")
	if st, body := newClient(t, base).get("/metrics"); st == http.StatusOK || strings.Contains(body, "conduit_http") {
		t.Errorf("public /metrics = %d: metrics must not be on the public listener", st)
	}
	admin := newClient(t, "http://"+listenerAddr(t, logs.String(), "admin listener"))
	// A request is counted after its answer has been sent: look again for
	// a moment rather than race it.
	counted := func() (int, string, bool) {
		st, body := admin.get("/metrics")
		return st, body, st == http.StatusOK && strings.Contains(body, `conduit_http_requests_total{code="404",method="GET",route="/"}`)
	}
	st, body, ok := counted()
	for deadline := time.Now().Add(2 * time.Second); !ok && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		st, body, ok = counted()
	}
	if !ok {
		t.Errorf("admin /metrics = %d without the public request:\n%s", st, body)
	}
	if st, _ := admin.get("/debug/pprof/"); st == http.StatusOK {
		t.Error("profiles on the admin listener without --debug-addr")
	}

	_, logs = serveInProcess(t, "--admin-addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0")
	both := newClient(t, "http://"+listenerAddr(t, logs.String(), "admin listener"))
	if st, body := both.get("/debug/pprof/"); st != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("profiles on the shared admin and debug listener = %d", st)
	}
	if st, _ := both.get("/metrics"); st != http.StatusOK {
		t.Errorf("metrics on the shared admin and debug listener = %d", st)
	}
}

// Without --admin-addr there are no metrics anywhere.
func TestNoAdminListenerByDefault(t *testing.T) {
	_, logs := serveInProcess(t)
	if a := privateAddr(logs.String(), "admin listener"); a != "" {
		t.Errorf("admin listener on %s without --admin-addr", a)
	}
}
