package store_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// The persistence layer does not depend on HTTP: neither the store nor any
// package of ours it imports uses net/http or the HTTP middleware.
func TestStoreImportsNoHTTP(t *testing.T) {
	const module = "github.com/conduit-dev/conduit/"
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var visit func(path, from string)
	visit = func(path, from string) {
		if seen[path] {
			return
		}
		seen[path] = true
		pkg, err := build.ImportDir(filepath.Join(root, strings.TrimPrefix(path, module)), 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range pkg.Imports {
			switch {
			case imp == "net/http" || strings.HasPrefix(imp, "net/http/"), imp == module+"internal/idempotency":
				t.Errorf("%s (reached from %s) imports %s", path, from, imp)
			case strings.HasPrefix(imp, module):
				visit(imp, path)
			}
		}
	}
	visit(module+"internal/store", "the test")
}
