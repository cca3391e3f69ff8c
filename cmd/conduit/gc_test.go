package main

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/conduit-dev/conduit/internal/memlimit"
)

func TestGCSettings(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	// A 1 GiB container on an 8 GiB machine.
	fsys := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("1073741824\n")},
		"proc/meminfo":             {Data: []byte("MemTotal: 8388608 kB\n")},
	}
	for _, c := range []struct {
		name    string
		env     map[string]string
		flag    string
		percent int
		limit   int64
		why     string
	}{
		{"defaults: derived from the cgroup", nil, "", serveGCPercent, 7 * (1 << 30) / 10, "derived"},
		{"GOGC set: the environment wins", map[string]string{"GOGC": "100"}, "", 0, 7 * (1 << 30) / 10, "cgroup v2"},
		{"GOMEMLIMIT set wins over the flag", map[string]string{"GOMEMLIMIT": "1GiB", "GOGC": "off"}, "300MiB", 0, 0, "GOMEMLIMIT=1GiB"},
		{"flag size", nil, "300MiB", serveGCPercent, 300 << 20, "--memory-limit"},
		{"flag percentage of the cgroup limit", nil, "50%", serveGCPercent, 512 << 20, "--memory-limit"},
		{"flag off", nil, "off", serveGCPercent, 0, "none"},
	} {
		p, err := gcSettings(env(c.env), c.flag, fsys, 0)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.percent != c.percent || p.limit != c.limit || !strings.Contains(p.why, c.why) {
			t.Errorf("%s: got %+v, want percent %d, limit %d, why containing %q", c.name, p, c.percent, c.limit, c.why)
		}
	}
	if _, err := gcSettings(env(nil), "lots", fsys, 0); err == nil {
		t.Error("a bad --memory-limit must be an error")
	}
	// No cgroup and no meminfo: no limit rather than a guess.
	if p, err := gcSettings(env(nil), "", fstest.MapFS{}, 0); err != nil || p.limit != 0 {
		t.Errorf("nothing detected: %+v, %v", p, err)
	}
}

// With the embedded database the derived limit leaves room for SQLite's
// page caches; a limit given is taken as given.
func TestGCSettingsOutsideTheHeap(t *testing.T) {
	env := func(string) string { return "" }
	host := fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: 25165824 kB\n")}} // 24 GiB, no cgroup
	small := fstest.MapFS{                                                          // a 256 MiB container
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("268435456\n")},
		"proc/meminfo":             {Data: []byte("MemTotal: 25165824 kB\n")},
	}
	const caches = 160 << 20
	smallDerived, err := memlimit.Detect(small) // 70% of the container's limit
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		fsys  fstest.MapFS
		flag  string
		limit int64
	}{
		{"host: the capped budget less the caches", host, "", memlimit.HostCap - caches},
		{"small container: the heap keeps half of 70%", small, "", int64(float64(smallDerived.Bytes) * minHeapShare)},
		{"a limit given is not reduced", host, "300MiB", 300 << 20},
	} {
		p, err := gcSettings(env, c.flag, c.fsys, caches)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p.limit != c.limit {
			t.Errorf("%s: limit %d MiB, want %d MiB (%s)", c.name, p.limit>>20, c.limit>>20, p.why)
		}
	}
	if p, _ := gcSettings(env, "", host, caches); !strings.Contains(p.why, "SQLite") {
		t.Errorf("the log must say what the limit was reduced for: %q", p.why)
	}
}
