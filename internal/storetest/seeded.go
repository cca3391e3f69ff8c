package storetest

import (
	"context"
	"testing"

	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/store"
)

// Seed loads seed's dataset with o into db, which must be empty, through
// the bulk path conduit seed takes.
func Seed(tb testing.TB, db *store.DB, o seed.Options) {
	tb.Helper()
	ctx := context.Background()
	l, err := db.BulkLoad(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := seed.Run(ctx, l, o); err != nil {
		tb.Fatal(err)
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
}
