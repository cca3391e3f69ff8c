package testproc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// ConduitPkg is the package of the conduit command.
const ConduitPkg = "github.com/conduit-dev/conduit/cmd/conduit"

// Binary is a Go program built on first use and shared by every test
// process of the source tree: linking conduit takes seconds, and
// go test ./... runs several packages that start it (see Shared).
// Declare it as a variable of the test package:
//
//	var conduitBin = testproc.Binary{Pkg: testproc.ConduitPkg}
type Binary struct {
	Pkg string // import path, e.g. ConduitPkg

	once sync.Once
	path string
	err  error
}

// Path builds the program if this process has not yet, and returns its
// path.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	SkipShort(t, "builds "+filepath.Base(b.Pkg))
	b.once.Do(func() { b.path, b.err = Shared(b.Pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Shared builds pkg into one path per source tree and package in the temp
// dir, and returns that path. The test processes of a go test ./... run
// build it in turn under a file lock; go build -o relinks only when the
// program there is not the one the sources make (it compares build IDs),
// so the first process links it and the others find it ready. The file
// stays for the next run, like Go's build cache.
func Shared(pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root + "\x00" + pkg))
	dir := filepath.Join(os.TempDir(), "conduit-testbin-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close() // and so unlocked
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	return out, build(out, pkg)
}

// moduleRoot is the directory of the go.mod above the working directory
// (a test runs in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build builds pkg with the extra go build flags (an -overlay for a variant
// of the program, say) into a temp dir of t, and returns its path.
func Build(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	SkipShort(t, "builds "+filepath.Base(pkg))
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if err := build(out, pkg, flags...); err != nil {
		t.Fatal(err)
	}
	return out
}

func build(out, pkg string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	b, err := exec.Command("go", append(args, pkg)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
