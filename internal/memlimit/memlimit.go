// Package memlimit derives a default soft memory limit for the Go runtime
// from the memory the process may use: its cgroup's limit (v2 memory.max,
// v1 memory.limit_in_bytes) or, without one, the machine's memory.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Fractions of the available memory given to the Go heap. The rest is for
// what the runtime's limit does not count: SQLite's page caches (allocated
// outside the Go heap), memory-mapped database pages, goroutine stacks
// beyond the heap, and the kernel's page cache charged to a container.
const (
	// CgroupFraction applies to a container's limit: the process is
	// killed above it, so the heap must stay well below.
	CgroupFraction = 0.7
	// HostFraction applies to the machine's memory when no cgroup limit is
	// set: the machine is shared with the database and other processes.
	HostFraction = 0.25
	// HostCap bounds the limit derived from the machine's memory. A node's
	// live heap is tens of MiB (caches bounded by count); a large soft limit
	// on a big shared host only lets garbage grow, and the RSS with it (a
	// node overloaded 20× reached 606 MB RSS with 6 GiB, 473 MB with 256 MiB;
	// offered 2,000 req/s, 785 MB with 512 MiB, SQLite's caches on top). With
	// the embedded database serve takes SQLite's page caches off it too, so
	// that the whole process stays under ~500 MB.
	// A container limit is taken at its fraction, uncapped: it was chosen.
	HostCap = 384 << 20
)

// Limit is a derived memory limit and where it came from.
type Limit struct {
	Bytes  int64  // the soft limit to set
	Total  int64  // the memory it was derived from
	Source string // e.g. "cgroup v2 /sys/fs/cgroup/memory.max", "/proc/meminfo"
}

func (l Limit) String() string {
	return fmt.Sprintf("%s of %s (%s)", Format(l.Bytes), Format(l.Total), l.Source)
}

// unlimited is the smallest value cgroup v1 reports for "no limit" is
// above (it reports the largest page-aligned int64, 9223372036854771712).
const unlimited = 1 << 60

// Detect reads the limits from fsys, the root file system (os.DirFS("/")
// in production): the cgroup's limit if it has one, else the machine's
// memory from /proc/meminfo; the smaller of the two when both are known.
func Detect(fsys fs.FS) (Limit, error) {
	host, hostErr := meminfo(fsys)
	if cg, src, ok := cgroupLimit(fsys); ok && (hostErr != nil || cg < host) {
		return Limit{Bytes: int64(float64(cg) * CgroupFraction), Total: cg, Source: src}, nil
	}
	if hostErr != nil {
		return Limit{}, hostErr
	}
	return Limit{Bytes: min(int64(float64(host)*HostFraction), HostCap), Total: host, Source: "proc/meminfo"}, nil
}

// cgroupLimit finds the memory limit of this process's cgroup. It reads
// /proc/self/cgroup for the cgroup's path and looks for the limit file at
// that path under the cgroup mount and at the mount's root (inside a
// container with a cgroup namespace the process's own cgroup is the root).
func cgroupLimit(fsys fs.FS) (int64, string, bool) {
	v2path, v1path := "/", "/"
	if b, err := fs.ReadFile(fsys, "proc/self/cgroup"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			// hierarchy-ID:controller-list:cgroup-path
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				v2path = parts[2]
			case hasController(parts[1], "memory"):
				v1path = parts[2]
			}
		}
	}
	candidates := []struct{ file, source string }{
		{path.Join("sys/fs/cgroup", v2path, "memory.max"), "cgroup v2"},
		{"sys/fs/cgroup/memory.max", "cgroup v2"},
		{path.Join("sys/fs/cgroup/memory", v1path, "memory.limit_in_bytes"), "cgroup v1"},
		{"sys/fs/cgroup/memory/memory.limit_in_bytes", "cgroup v1"},
	}
	for _, c := range candidates {
		b, err := fs.ReadFile(fsys, c.file)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, "", false // v2: no limit
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= unlimited {
			return 0, "", false
		}
		return n, c.source + " /" + c.file, true
	}
	return 0, "", false
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// meminfo reads MemTotal from /proc/meminfo.
func meminfo(fsys fs.FS) (int64, error) {
	b, err := fs.ReadFile(fsys, "proc/meminfo")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// MemTotal:       24684544 kB
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("memlimit: bad MemTotal %q", sc.Text())
			}
			if len(f) == 3 && f[2] == "kB" {
				n *= 1024
			}
			return n, nil
		}
	}
	return 0, errors.New("memlimit: no MemTotal in /proc/meminfo")
}

// Parse reads a size as GOMEMLIMIT writes it (a number of bytes with an
// optional B, KiB, MiB, GiB or TiB suffix), or a percentage ("60%") of
// total, the memory Detect found.
func Parse(orig string, total int64) (int64, error) {
	s := strings.TrimSpace(orig)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return 0, fmt.Errorf("memory limit %q: a percentage must be in (0, 100]", s)
		}
		if total <= 0 {
			return 0, fmt.Errorf("memory limit %q: the available memory is unknown", s)
		}
		return int64(float64(total) * f / 100), nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("memory limit %q: want bytes with an optional KiB/MiB/GiB/TiB suffix, or a percentage", orig)
	}
	return n * mult, nil
}

// Format writes n bytes in MiB (or GiB above 10 GiB), for logs.
func Format(n int64) string {
	if n >= 10<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
