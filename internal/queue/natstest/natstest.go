// Package natstest runs a throwaway NATS server with JetStream for tests:
// Debian's nats-server as a child of the test, on a free loopback port,
// with its storage in a temp dir, stopped by PID. Never the shared server.
//
// Without nats-server installed the tests that need it skip, unless
// CI=true: then they fail.
package natstest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/testproc"
)

// Server is one nats-server process (restartable on the same port and
// storage).
type Server struct {
	URL               string
	bin, dir          string
	port, monitorPort int
	proc              *testproc.Proc
}

// Binary returns the path of nats-server, skipping t (failing it under
// CI=true) when it is not installed.
func Binary(t testing.TB) string {
	t.Helper()
	return testproc.Need(t, "nats-server", "apt-get install nats-server")
}

// Start runs a JetStream server for the test; it is stopped at the end.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{bin: Binary(t), dir: t.TempDir(), port: testproc.FreePort(t), monitorPort: testproc.FreePort(t)}
	s.URL = fmt.Sprintf("nats://127.0.0.1:%d", s.port)
	s.start(t)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	s.proc = testproc.Start(t, "nats-server", filepath.Join(s.dir, "nats.log"),
		exec.Command(s.bin, "-a", "127.0.0.1", "-p", fmt.Sprint(s.port), "-m", fmt.Sprint(s.monitorPort),
			"-js", "-sd", filepath.Join(s.dir, "js")))
	s.proc.WaitReady(t, 20*time.Second,
		testproc.HTTPOK(fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", s.monitorPort)))
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() { s.proc.Kill() }

// Restart starts the server again on the same port and storage.
func (s *Server) Restart(t testing.TB) { s.start(t) }

// Stop ends the server (SIGTERM, then SIGKILL).
func (s *Server) Stop() { s.proc.Stop(syscall.SIGTERM, 10*time.Second) }
