package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// ConduitPkg is the package of the conduit command.
const ConduitPkg = "github.com/conduit-dev/conduit/cmd/conduit"

// Binary is a Go program built once per test process, on first use:
// linking conduit takes seconds, and the tests that run it as it ships
// share one build. Declare it as a variable of the test package and
// remove it in TestMain:
//
//	var conduitBin = testproc.Binary{Pkg: testproc.ConduitPkg}
//
//	func TestMain(m *testing.M) { storetest.Main(m); conduitBin.Remove() }
type Binary struct {
	Pkg string // import path, e.g. ConduitPkg

	once sync.Once
	path string
	err  error
}

// Path builds the program if it is not built yet and returns its path.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	SkipShort(t, "builds "+filepath.Base(b.Pkg))
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "conduit-testbin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(b.Pkg))
		b.err = build(b.path, b.Pkg)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Remove deletes the built program, if any.
func (b *Binary) Remove() {
	if b.path != "" {
		os.RemoveAll(filepath.Dir(b.path))
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
