// Package varnishtest runs a throwaway Varnish for tests: varnishd -F as a
// child process of the test, with its own work directory and a free port
// on 127.0.0.1, loaded with the shipped deploy/varnish/conduit.vcl in
// front of one backend address, and stopped when the test ends.
//
// Without varnishd the tests skip with a message, or fail when CI=true.
package varnishtest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/testproc"
)

// Varnish is one varnishd owned by a test.
type Varnish struct {
	URL  string // http://127.0.0.1:port, no trailing slash
	Port int
	dir  string
	proc *testproc.Proc
}

// VCLPath is the shipped VCL, found next to this source file.
func VCLPath(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("varnishtest: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "varnish", "conduit.vcl")
}

// Binary returns varnishd's path, skipping t (failing it when CI=true)
// when it is not installed.
func Binary(t testing.TB) string {
	t.Helper()
	return testproc.Need(t, "varnishd", "apt-get install varnish", "/usr/sbin/varnishd")
}

// Start runs Varnish on port (0: a free one) in front of backend
// (host:port), letting 127.0.0.1 purge, and waits until it answers.
func Start(t testing.TB, backend string, port int) *Varnish {
	t.Helper()
	bin := Binary(t)
	if port == 0 {
		port = testproc.StablePort(t)
	}
	host, bport, err := net.SplitHostPort(backend)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(VCLPath(t))
	if err != nil {
		t.Fatal(err)
	}
	vcl := strings.NewReplacer("@BACKEND_HOST@", host, "@BACKEND_PORT@", bport,
		"\n@PURGERS@\n", "\n    \"127.0.0.1\";\n").Replace(string(tmpl))
	// The cache process runs as an unprivileged user: it must reach the dir.
	dir := testproc.LogDir(t, "conduit-varnish-")
	vclPath := filepath.Join(dir, "conduit.vcl")
	if err := os.WriteFile(vclPath, []byte(vcl), 0o644); err != nil {
		t.Fatal(err)
	}
	// The management port too from below the ephemeral range: given
	// 127.0.0.1:0, varnishd once failed to bind the port it had picked
	// ("Address already in use") while other tests' connections ran.
	admin := testproc.StablePort(t)
	v := &Varnish{URL: "http://127.0.0.1:" + strconv.Itoa(port), Port: port, dir: dir}
	v.proc = testproc.Start(t, "varnishd", filepath.Join(dir, "varnishd.log"),
		exec.Command(bin, "-F", "-a", "127.0.0.1:"+strconv.Itoa(port), "-T", "127.0.0.1:"+strconv.Itoa(admin),
			"-f", vclPath, "-n", filepath.Join(dir, "work"), "-s", "malloc,64m"))
	t.Cleanup(func() { v.proc.Stop(syscall.SIGTERM, 10*time.Second) })
	v.proc.WaitReady(t, 30*time.Second, testproc.HTTPAnswers(v.URL+"/readyz"))
	return v
}

// Counters returns varnishstat's counters (e.g. "MAIN.cache_hit").
func (v *Varnish) Counters(t testing.TB) map[string]uint64 {
	t.Helper()
	out, err := exec.Command("varnishstat", "-n", filepath.Join(v.dir, "work"), "-1", "-j").Output()
	if err != nil {
		t.Fatalf("varnishstat: %v", err)
	}
	var doc struct {
		Counters map[string]struct {
			Value uint64 `json:"value"`
		} `json:"counters"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("varnishstat output: %v", err)
	}
	c := map[string]uint64{}
	for k, v := range doc.Counters {
		c[k] = v.Value
	}
	return c
}

// Healthy reports what Varnish thinks of its backend.
func (v *Varnish) Healthy(t testing.TB) bool {
	t.Helper()
	out, err := exec.Command("varnishadm", "-n", filepath.Join(v.dir, "work"), "backend.list").CombinedOutput()
	if err != nil {
		t.Fatalf("varnishadm backend.list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "conduit") {
			return strings.Contains(line, "healthy") && !strings.Contains(line, "sick")
		}
	}
	t.Fatalf("no conduit backend in:\n%s", out)
	return false
}

// String names the instance for logs.
func (v *Varnish) String() string { return fmt.Sprintf("varnish %s (%s)", v.URL, v.dir) }
