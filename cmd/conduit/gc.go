package main

import (
	"runtime/debug"
)

// Garbage collector defaults for `conduit serve`, used unless the
// environment sets GOGC or GOMEMLIMIT (the Go runtime reads those itself).
//
// Measured under conduit bench (closed loop, full mix, full SQLite dataset,
// back to back on the same machine): GOGC=400 served 2,212 and 2,305 req/s
// against 1,911 and 2,174 with the default 100; peak RSS 270-323 MB
// against 270-292 MB (the live heap is small, ~50 MB). The soft memory
// limit (256 MiB; SQLite's page caches and mapped pages come on top) makes
// the collector work harder instead of letting the heap grow past it,
// which keeps the peak RSS clear of the 500 MB goal (measured 370-410 MB
// with the HTML page cache, closed loop).
const (
	serveGCPercent   = 400
	serveMemoryLimit = 256 << 20
)

// gcSettings returns the GOGC percent and memory limit serve should set:
// 0 for a value the environment already sets.
func gcSettings(getenv func(string) string) (percent int, limit int64) {
	if getenv("GOGC") == "" {
		percent = serveGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		limit = serveMemoryLimit
	}
	return percent, limit
}

// tuneGC applies gcSettings to the runtime.
func tuneGC(getenv func(string) string) {
	percent, limit := gcSettings(getenv)
	if percent > 0 {
		debug.SetGCPercent(percent)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}
