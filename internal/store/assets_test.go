package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func TestStaticAssets(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		day := 24 * time.Hour
		start := time.Unix(1_800_000_000, 0)
		css := []byte("body{color:red}\x00binary-safe\xff")
		if err := db.PutAsset(ctx, "app.111111111111.css", "text/css; charset=utf-8", css, start); err != nil {
			t.Fatal(err)
		}
		if err := db.PutAsset(ctx, "app.222222222222.css", "text/css; charset=utf-8", []byte("new"), start.Add(10*day)); err != nil {
			t.Fatal(err)
		}
		ct, body, err := db.Asset(ctx, "app.111111111111.css")
		if err != nil || ct != "text/css; charset=utf-8" || !bytes.Equal(body, css) {
			t.Fatalf("Asset = %q, %q, %v", ct, body, err)
		}
		if _, _, err := db.Asset(ctx, "app.333333333333.css"); !errors.Is(err, conduit.ErrNotFound) {
			t.Fatalf("missing asset: %v", err)
		}
		// The old build starts again: its file is in use again.
		if err := db.PutAsset(ctx, "app.111111111111.css", "text/css; charset=utf-8", css, start.Add(20*day)); err != nil {
			t.Fatal(err)
		}
		n, err := db.ForgetAssets(ctx, start.Add(15*day))
		if err != nil || n != 1 {
			t.Fatalf("ForgetAssets = %d, %v; want 1 (the file last seen on day 10)", n, err)
		}
		if _, _, err := db.Asset(ctx, "app.222222222222.css"); !errors.Is(err, conduit.ErrNotFound) {
			t.Errorf("forgotten asset: %v", err)
		}
		if _, _, err := db.Asset(ctx, "app.111111111111.css"); err != nil {
			t.Errorf("asset seen again was forgotten: %v", err)
		}
	})
}
