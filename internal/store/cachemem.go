package store

import "runtime"

// Page caches of an embedded database's connections (PRAGMA cache_size =
// -N, in KiB). A WAL reader's cache is emptied whenever another connection
// has committed, so with the mix's writes a reader's cache holds little more
// than one transaction's pages; a larger one only kept the memory (the five
// caches at 31 MiB each took ~165 MB of RSS at overload, outside the Go
// heap). The writer's cache is its own to keep between its transactions.
const (
	sqliteReadCacheKiB  = 8000
	sqliteWriteCacheKiB = 32000
)

// sqliteReadConns is the size of the read pool of an embedded database:
// WAL lets these readers run beside the one writer.
func sqliteReadConns() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// SQLiteCacheBytes is the most that the page caches of an embedded
// database's connections (the read pool and the writer) hold. SQLite
// allocates them outside the Go heap, so the Go runtime's memory limit
// does not count them: serve sets that limit net of this.
func SQLiteCacheBytes() int64 {
	return (int64(sqliteReadConns())*sqliteReadCacheKiB + sqliteWriteCacheKiB) << 10
}
