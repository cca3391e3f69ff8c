package drill

import (
	"testing"

	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// conduitBin is the binary under test, built once for all the drills
// (testproc.Shared).
var conduitBin = testproc.Binary{Pkg: testproc.ConduitPkg}

// TestMain drops the PostgreSQL template database the tests made.
func TestMain(m *testing.M) {
	storetest.Main(m)
}
