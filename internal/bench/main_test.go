package bench_test

import (
	"testing"

	"github.com/conduit-dev/conduit/internal/storetest"
)

// TestMain drops the PostgreSQL template database the tests made.
func TestMain(m *testing.M) { storetest.Main(m) }
