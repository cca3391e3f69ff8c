// Package testproc runs the child processes of integration tests: servers
// the tests own (redis-server, nats-server, varnishd, haproxy, PostgreSQL,
// conduit itself), the free ports they listen on, the wait until they
// answer, and the conduit binary built once per test process.
//
// Every process is a child of the test in its own process group, killed
// by the kernel if the test process dies, and killed by PID when the test
// ends if it still runs: a test never leaves a server behind, and never
// signals a process it did not start.
package testproc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need returns the path of the program name, looked up on PATH and then at
// each of paths (for programs in sbin). Without it, t is skipped, or
// failed when CI=true (where every integration test must run); install
// says how to get it, e.g. "apt-get install redis-server".
func Need(t testing.TB, name, install string, paths ...string) string {
	t.Helper()
	SkipShort(t, "runs "+name)
	bin, err := exec.LookPath(name)
	for _, p := range paths {
		if err == nil {
			break
		}
		bin, err = exec.LookPath(p)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is not installed (%s): the tests that need it must run", name, install)
		}
		t.Skipf("skipping: %s is not installed (%s)", name, install)
	}
	return bin
}

// SkipShort skips t under go test -short, saying it does what: -short is
// the quick loop of unit and store tests, and leaves out every test that
// builds conduit or runs a program of its own (servers, drills). Need,
// Start, Build and Binary.Path call it, so a test is left out before it
// starts anything; under CI=true the full suite runs, never -short.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: %s", what)
	}
}

// LogDir makes a directory for the files and logs of a test's servers:
// readable by all (servers such as varnishd's cache process run as an
// unprivileged user), removed when the test ends, kept and named in the
// test's log when it failed.
func LogDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// FreePort asks the kernel for a port that is free on 127.0.0.1 (the small
// race until the server binds it is accepted in tests).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StablePort is StablePorts for one port.
func StablePort(t testing.TB) int {
	t.Helper()
	return StablePorts(t, 1)[0]
}

// StablePorts returns n distinct ports free on 127.0.0.1 below the
// ephemeral range (32768), where no outgoing connection can take one
// while its server is down: for servers a test stops and starts again on
// the same port.
//
// A port is handed out once per process, so that tests running in
// parallel (the drills) never get the same port while neither has bound
// it yet; and never from the area the stage-4 drill takes its block of
// ports from (see drill4Ports), which it finds free when it starts but
// binds over a minute.
func StablePorts(t testing.TB, n int) []int {
	t.Helper()
	handedMu.Lock()
	defer handedMu.Unlock()
	var ports []int
	for range 200 * n {
		if len(ports) == n {
			return ports
		}
		p := 20000 + rand.IntN(12700)
		if handed[p] || (p >= drill4Ports[0] && p < drill4Ports[1]) {
			continue
		}
		handed[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("found %d of %d free ports in 20000-32700", len(ports), n)
	}
	return ports
}

// drill4Ports is where the stage-4 drill looks for its block of ports
// (internal/drill/stage4_test.go: blocks of 50 from 25700, twenty of them).
var drill4Ports = [2]int{25700, 25700 + 50*20}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{} // ports StablePorts returned in this process
)

// Proc is a child process of a test.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // how it ended, once done is closed
}

// Start runs cmd (its Env, Dir and SysProcAttr.Credential as the caller
// set them) with its output appended to the file logPath, so that the log
// of a restarted server keeps its history. The process gets its own
// process group and dies with the test process; when the test ends it is
// killed if it still runs (a caller's own cleanup, registered later, runs
// first and may stop it gently).
func Start(t testing.TB, name, logPath string, cmd *exec.Cmd) *Proc {
	t.Helper()
	SkipShort(t, "runs "+name)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(p.Kill)
	return p
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended, and how (cmd.Wait's error).
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the process, unless it has ended.
func (p *Proc) Signal(sig syscall.Signal) {
	if ended, _ := p.Exited(); !ended {
		p.cmd.Process.Signal(sig)
	}
}

// SignalGroup sends sig to the process's whole group (it started one of
// its own): a server and every child of it, as a lost machine loses them.
func (p *Proc) SignalGroup(sig syscall.Signal) {
	if ended, _ := p.Exited(); !ended {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Wait waits up to d for the process to end and returns how it ended, or
// an error saying it still runs.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", p.Name, d)
	}
}

// Stop sends sig and waits up to grace for the process to end, then kills
// it; it returns how the process ended. Stopping an ended process returns
// at once.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) error {
	p.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
	return p.err
}

// Kill kills the process (SIGKILL, after SIGCONT so that a paused process
// runs to die) and waits for it to end.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGCONT)
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Log returns the end of the process's log, up to max bytes, for a
// failure message.
func (p *Proc) Log(max int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// pollEvery is how often a wait checks again.
const pollEvery = 20 * time.Millisecond

// Wait calls ready until it returns nil, and fails t with ready's last
// error when within has passed. what names the thing waited for.
func Wait(t testing.TB, within time.Duration, what string, ready func() error) {
	t.Helper()
	wait(t, nil, within, what, ready)
}

// WaitReady is Wait for a server run by p: it also fails t, with the end
// of p's log, as soon as p ends.
func (p *Proc) WaitReady(t testing.TB, within time.Duration, ready func() error) {
	t.Helper()
	wait(t, p, within, p.Name, ready)
}

func wait(t testing.TB, p *Proc, within time.Duration, what string, ready func() error) {
	t.Helper()
	var ended <-chan struct{} // nil: never
	if p != nil {
		ended = p.done
	}
	deadline := time.Now().Add(within)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-ended:
			t.Fatalf("%s ended before it was ready (%v); its log ends:\n%s", what, p.err, p.Log(4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v: %v", what, within, err)
		}
		time.Sleep(pollEvery)
	}
}

// HTTPOK is a readiness check: nil once a GET of url answers 200 OK.
func HTTPOK(url string) func() error {
	return func() error {
		status, err := get(url)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("GET %s: %d %s", url, status, http.StatusText(status))
		}
		return err
	}
}

// HTTPAnswers is a readiness check: nil once a GET of url gets any HTTP
// answer (a proxy is up even while its backend is not).
func HTTPAnswers(url string) func() error {
	return func() error {
		_, err := get(url)
		return err
	}
}

func get(url string) (status int, err error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// WaitHTTP waits up to within for url to answer 200 OK.
func WaitHTTP(t testing.TB, url string, within time.Duration) {
	t.Helper()
	Wait(t, within, url, HTTPOK(url))
}
