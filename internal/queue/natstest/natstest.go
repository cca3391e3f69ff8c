// Package natstest runs a throwaway NATS server with JetStream for tests:
// Debian's nats-server as a child of the test, on a free loopback port,
// with its storage in a temp dir, stopped by PID. Never the shared server.
//
// Without nats-server installed the tests that need it skip, unless
// CI=true: then they fail.
package natstest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Server is one nats-server process (restartable on the same port and
// storage).
type Server struct {
	URL               string
	bin, dir          string
	port, monitorPort int
	cmd               *exec.Cmd
	done              chan struct{}
}

// Binary returns the path of nats-server, skipping t (failing it under
// CI=true) when it is not installed.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but nats-server is not installed (apt-get install nats-server): the queue tests must run")
		}
		t.Skip("nats-server is not installed (apt-get install nats-server); skipping the NATS tests")
	}
	return bin
}

// Start runs a JetStream server for the test; it is stopped at the end.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{bin: Binary(t), dir: t.TempDir(), port: freePort(t), monitorPort: freePort(t)}
	s.URL = fmt.Sprintf("nats://127.0.0.1:%d", s.port)
	s.start(t)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(s.dir, "nats.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", fmt.Sprint(s.port), "-m", fmt.Sprint(s.monitorPort),
		"-js", "-sd", filepath.Join(s.dir, "js"))
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("start nats-server: %v", err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); log.Close(); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", s.monitorPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("nats-server exited at start (see %s)", filepath.Join(s.dir, "nats.log"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not ready after 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Restart starts the server again on the same port and storage.
func (s *Server) Restart(t testing.TB) { s.start(t) }

// Stop ends the server (SIGTERM, then SIGKILL).
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
