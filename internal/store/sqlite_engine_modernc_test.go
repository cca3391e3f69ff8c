//go:build !sqlite_cgo

package store

import (
	"database/sql/driver"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

func checkEngineDriver(d driver.Driver) error {
	if _, ok := d.(*sqlite.Driver); !ok {
		return fmt.Errorf("driver %T, want modernc.org/sqlite's", d)
	}
	return nil
}

func engineSourceID() string { return sqlite3.SQLITE_SOURCE_ID }
