package testproc

import (
	"errors"
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
)

func TestStopEndsTheProcessGently(t *testing.T) {
	p := Start(t, "sleep", filepath.Join(t.TempDir(), "log"), exec.Command("sleep", "60"))
	if ended, _ := p.Exited(); ended {
		t.Fatal("sleep ended at once")
	}
	err := p.Stop(syscall.SIGTERM, 10*time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("Stop = %v, want the process ended by SIGTERM", err)
	}
	if ended, _ := p.Exited(); !ended {
		t.Error("Exited says it still runs after Stop")
	}
}

// fatalTB records the failure of a wait instead of failing the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitReadyFailsAsSoonAsTheServerEnds(t *testing.T) {
	p := Start(t, "crasher", filepath.Join(t.TempDir(), "log"), exec.Command("sh", "-c", "echo no config; exit 3"))
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		p.WaitReady(f, time.Minute, func() error { return errors.New("not yet") })
	}()
	<-done
	if !strings.Contains(f.msg, "crasher ended before it was ready") || !strings.Contains(f.msg, "no config") {
		t.Errorf("failure = %q, want it to say the server ended, with its log", f.msg)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the wait took %v: it did not notice the exit", took)
	}
}

func TestStablePortsAreDistinctFreeAndBelowTheEphemeralRange(t *testing.T) {
	ports := StablePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if p < 1024 || p >= 32768 || seen[p] {
			t.Fatalf("ports %v: want 5 distinct ports in 1024-32767", ports)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
}

// Tests running in parallel never get the same port from two calls, and
// no call hands out a port of the stage-4 drill's area.
func TestStablePortsAreHandedOutOnce(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		for _, p := range StablePorts(t, 4) {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			if p >= drill4Ports[0] && p < drill4Ports[1] {
				t.Fatalf("port %d is in the stage-4 drill's area %v", p, drill4Ports)
			}
			seen[p] = true
		}
	}
}

// A shared build is linked once: the next process (here, the next call)
// finds the program up to date at the same path.
func TestSharedBuildIsLinkedOnce(t *testing.T) {
	SkipShort(t, "builds tools/supervise")
	const pkg = "github.com/conduit-dev/conduit/tools/supervise"
	first, err := Shared(pkg)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Shared(pkg)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(second)
	if err != nil {
		t.Fatal(err)
	}
	// A relinked program replaces the file (a new inode); one found up to
	// date is only touched.
	if second != first || !os.SameFile(before, after) {
		t.Errorf("second build: %s, first %s: want the same file, not relinked", second, first)
	}
}

// Holders of the load lock shared do not wait for each other; one alone
// waits for them all, and they for it.
func TestLoadLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), machineLock)
	try := func(how int) bool {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB) == nil
	}
	t.Run("shared", func(t *testing.T) {
		holdLock(t, path, syscall.LOCK_SH)
		if !try(syscall.LOCK_SH) {
			t.Error("a second shared holder had to wait")
		}
		if try(syscall.LOCK_EX) {
			t.Error("the lock was taken alone while held shared")
		}
	})
	t.Run("alone", func(t *testing.T) {
		holdLock(t, path, syscall.LOCK_EX)
		if try(syscall.LOCK_SH) {
			t.Error("the lock was taken shared while held alone")
		}
	})
	if !try(syscall.LOCK_EX) {
		t.Error("the lock is still held after its tests ended")
	}
}
