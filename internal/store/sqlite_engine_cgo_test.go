//go:build sqlite_cgo

package store

import (
	"database/sql/driver"
	"fmt"

	sqlite3 "github.com/mattn/go-sqlite3"
)

func checkEngineDriver(d driver.Driver) error {
	if _, ok := d.(*sqlite3.SQLiteDriver); !ok {
		return fmt.Errorf("driver %T, want github.com/mattn/go-sqlite3's", d)
	}
	return nil
}

// engineSourceID asks the C library go-sqlite3 links, not a connection.
func engineSourceID() string {
	_, _, source := sqlite3.Version()
	return source
}
