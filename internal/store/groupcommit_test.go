package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// SQLite runs the writes that queue while one commits in one transaction
// (groupcommit.go); each must still get its own result: a write that
// fails (a taken username) leaves the others of its group written, a
// write whose request is gone is not run, and every write that succeeded
// is there afterwards, the failed ones not.
func TestGroupedWritesSQLite(t *testing.T) {
	db := storetest.OpenSQLite(t)
	taken := mkUser(t, db, "taken")
	gone, cancel := context.WithCancel(ctx)
	cancel()

	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("user%d", i)
			if i%5 == 0 {
				name = taken.Username // refused
			}
			wctx := ctx
			if i%7 == 3 {
				wctx = gone // never run
			}
			ts := now()
			u := conduit.User{Username: name, Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: "h", CreatedAt: ts, UpdatedAt: ts}
			errs[i] = db.CreateUser(wctx, &u)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var dup *conduit.DuplicateError
		name := fmt.Sprintf("user%d", i)
		switch {
		case i%7 == 3:
			if err == nil {
				t.Errorf("write %d: its request was gone, yet it succeeded", i)
			}
		case i%5 == 0:
			if !errors.As(err, &dup) {
				t.Errorf("write %d with a taken username: %v, want a DuplicateError", i, err)
			}
		case err != nil:
			t.Errorf("write %d: %v", i, err)
		}
		_, lerr := db.UserByUsername(ctx, name)
		switch {
		case i%5 == 0:
		case err == nil && lerr != nil:
			t.Errorf("write %d succeeded but %s is not there: %v", i, name, lerr)
		case err != nil && !errors.Is(lerr, conduit.ErrNotFound):
			t.Errorf("write %d failed (%v) but %s is there (%v)", i, err, name, lerr)
		}
	}
	if err := db.CheckIntegrity(ctx); err != nil {
		t.Error(err)
	}
}
