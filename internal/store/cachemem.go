package store

import "runtime"

// sqliteCacheKiB is the page cache of each connection to an embedded
// database (PRAGMA cache_size = -N, in KiB).
const sqliteCacheKiB = 32000

// sqliteReadConns is the size of the read pool of an embedded database:
// WAL lets these readers run beside the one writer.
func sqliteReadConns() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// SQLiteCacheBytes is the most that the page caches of an embedded
// database's connections (the read pool and the writer) hold. SQLite
// allocates them outside the Go heap, so the Go runtime's memory limit
// does not count them: serve sets that limit net of this.
func SQLiteCacheBytes() int64 { return int64(sqliteReadConns()+1) * sqliteCacheKiB << 10 }
