package store

import (
	"database/sql"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolStat is the state of one connection pool, for metrics: is the node
// waiting for database connections (the pool is too small for its load,
// or the database is slow)?
type PoolStat struct {
	// Pool is "primary" or "replica" (PostgreSQL), "sqlite_writer" (the
	// single connection every SQLite write waits for) or "sqlite_readers".
	Pool    string
	Replica string // host:port of a replica's pool, else ""
	Max     int    // connections the pool may open
	InUse   int    // connections taken now
	Idle    int    // connections open and free now
	// Acquires counts connections taken from the pool (-1: not counted,
	// SQLite's pools); Waits those that found none free and waited, for
	// WaitTime in all.
	Acquires, Waits int64
	WaitTime        time.Duration
}

// PoolStats returns the state of every pool of the store: the primary's,
// each replica's, or SQLite's two.
func (db *DB) PoolStats() []PoolStat {
	if db.pool == nil {
		return []PoolStat{sqlPool("sqlite_writer", db.write), sqlPool("sqlite_readers", db.read)}
	}
	out := []PoolStat{pgPool("primary", "", db.pool)}
	if db.replicas != nil {
		for _, r := range db.replicas.replicas {
			out = append(out, pgPool("replica", r.name, r.pool))
		}
	}
	return out
}

func pgPool(name, replica string, p *pgxpool.Pool) PoolStat {
	s := p.Stat()
	return PoolStat{Pool: name, Replica: replica, Max: int(s.MaxConns()), InUse: int(s.AcquiredConns()), Idle: int(s.IdleConns()),
		Acquires: s.AcquireCount(), Waits: s.EmptyAcquireCount(), WaitTime: s.EmptyAcquireWaitTime()}
}

func sqlPool(name string, db *sql.DB) PoolStat {
	s := db.Stats()
	return PoolStat{Pool: name, Max: s.MaxOpenConnections, InUse: s.InUse, Idle: s.Idle,
		Acquires: -1, Waits: s.WaitCount, WaitTime: s.WaitDuration}
}
