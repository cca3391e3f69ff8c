package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// debugAddr finds the debug listener's address in the JSON log.
func debugAddr(logs string) string {
	for _, line := range strings.Split(logs, "\n") {
		var l struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && strings.Contains(l.Msg, "debug listener") {
			return l.Addr
		}
	}
	return ""
}

// Profiles are served only on the opt-in debug listener, never on the
// public address.
func TestDebugListener(t *testing.T) {
	base, logs := serveInProcess(t, "--debug-addr", "127.0.0.1:0")
	addr := debugAddr(logs.String())
	if addr == "" {
		t.Fatalf("no debug listener in the log:\n%s", logs)
	}
	c := newClient(t, "http://"+addr)
	if st, body := c.get("/debug/pprof/"); st != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("debug /debug/pprof/ = %d %.200q", st, body)
	}
	if st, body := c.get("/debug/pprof/heap?debug=1"); st != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("debug heap profile = %d %.200q", st, body)
	}
	pub := newClient(t, base)
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		if st, body := pub.get(p); st == http.StatusOK || strings.Contains(body, "goroutine") {
			t.Errorf("public %s = %d: profiles must not be on the public listener", p, st)
		}
	}
}

// Without --debug-addr there is no debug listener.
func TestDebugListenerOffByDefault(t *testing.T) {
	_, logs := serveInProcess(t)
	if a := debugAddr(logs.String()); a != "" {
		t.Errorf("debug listener on %s without --debug-addr", a)
	}
}
