// Package redistest runs a throwaway redis-server for tests: a child
// process of the test on its own free port on 127.0.0.1, with no
// persistence, stopped when the test ends. Tests may kill, pause and
// restart it; the shared server on 6379 is never touched.
//
// Without a redis-server binary the tests skip with a message, or fail
// when CI=true.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// BinEnv may name the redis-server binary; the default is the one on PATH.
const BinEnv = "CONDUIT_TEST_REDIS_SERVER"

// Server is one redis-server owned by a test.
type Server struct {
	Port int
	bin  string
	dir  string
	t    testing.TB

	mu   sync.Mutex
	proc *testproc.Proc // nil when stopped
}

// Start starts a server and waits until it answers PING.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv(BinEnv)
	if bin == "" {
		bin = testproc.Need(t, "redis-server", "apt-get install redis-server")
	}
	s := &Server{bin: bin, dir: t.TempDir(), t: t, Port: testproc.FreePort(t)}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// URL is the address to give a client.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Start runs the server (again, empty) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.t.Fatal("redis-server already running")
	}
	s.proc = testproc.Start(s.t, "redis-server", filepath.Join(s.dir, "redis.log"),
		exec.Command(s.bin, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", s.dir, "--daemonize", "no", "--loglevel", "warning"))
	s.proc.WaitReady(s.t, 10*time.Second, s.ping)
}

// Kill stops the server with SIGKILL (its data is lost) and waits for it.
// Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
}

// Pause stops the process with SIGSTOP: connections stay open, nothing is
// answered. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Signal(sig)
	}
}

// Do sends one command on a fresh connection (inline protocol) and returns
// the first line of the reply; for test setup and checks.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", errors.New(line[1:])
	}
	if strings.HasPrefix(line, "$") && line != "$-1" {
		v, err := r.ReadString('\n')
		return strings.TrimRight(v, "\r\n"), err
	}
	return line, nil
}

func (s *Server) ping() error {
	r, err := s.Do("PING")
	if err == nil && r != "+PONG" {
		err = fmt.Errorf("PING answered %q", r)
	}
	return err
}

// Cache returns a cache.Redis on s as one node uses it, closed when the
// test ends, once it is usable. Unset options get test values: a quiet
// logger and a generous timeout (a timeout is a miss, which tests of what
// the cache returns would mistake for a bug; fault tests set their own).
func (s *Server) Cache(t testing.TB, o cache.RedisOptions) *cache.Redis {
	t.Helper()
	return CacheAt(t, s.URL(), o)
}

// CacheAt is Cache for a server reached at url (a proxy in front of one).
func CacheAt(t testing.TB, url string, o cache.RedisOptions) *cache.Redis {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r, err := cache.NewRedis(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	deadline := time.Now().Add(10 * time.Second)
	for !r.Usable() {
		if time.Now().After(deadline) {
			t.Fatal("the Redis cache did not become usable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return r
}
