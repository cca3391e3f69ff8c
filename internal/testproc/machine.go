package testproc

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The drills load the machine with clusters of their own, and the
// hostile-client suite measures a well-behaved client's latency while a
// node is under attack. Side by side (`go test ./...` runs packages in
// parallel) a saturated machine turns that measure into failures that say
// nothing about the node: in a CI run one of the client's requests waited
// out the limiter's queue while three drills ran beside the suite. So
// they hold one lock file of the machine: drills share it, the suite
// holds it alone. That also keeps two test runs on one machine apart.

// machineLock is the lock file's name in os.TempDir.
const machineLock = "conduit-load-tests.lock"

// LoadShared holds the machine's load lock, shared with other holders of
// it shared, until t ends (a drill).
func LoadShared(t testing.TB) { holdLock(t, filepath.Join(os.TempDir(), machineLock), syscall.LOCK_SH) }

// LoadAlone holds the machine's load lock alone until t ends (a test that
// measures latency).
func LoadAlone(t testing.TB) { holdLock(t, filepath.Join(os.TempDir(), machineLock), syscall.LOCK_EX) }

// holdLock takes the flock how (LOCK_SH or LOCK_EX) on the file at path,
// waiting for it, and holds it until t ends.
func holdLock(t testing.TB, path string, how int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("load lock: %v", err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("load lock %s: %v", f.Name(), err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("waited %v for other load tests on this machine (%s)", waited.Round(100*time.Millisecond), f.Name())
	}
	t.Cleanup(func() { f.Close() }) // closing the file releases the lock
}
