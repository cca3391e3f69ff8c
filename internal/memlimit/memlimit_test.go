package memlimit

import (
	"strings"
	"testing"
	"testing/fstest"
)

const meminfo8G = "MemTotal:        8388608 kB\nMemFree:         1000 kB\n"

// v2Root is a namespaced cgroup v2 (the root is the container's) whose
// memory.max is limit ("max" for none), on an 8 GiB machine.
func v2Root(limit string) map[string]string {
	return map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": limit + "\n",
		"proc/meminfo":             meminfo8G,
	}
}

// v1Root is a cgroup v1 whose limit is read at the memory mount's root
// (self is /proc/self/cgroup), on an 8 GiB machine.
func v1Root(self, limit string) map[string]string {
	return map[string]string{
		"proc/self/cgroup":                           self,
		"sys/fs/cgroup/memory/memory.limit_in_bytes": limit + "\n",
		"proc/meminfo":                               meminfo8G,
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		name        string
		files       map[string]string
		bytes       int64
		sourceHas   string
		wantErr     bool
		totalShould int64
	}{
		{
			name: "cgroup v2 at the process's path",
			files: map[string]string{
				"proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
				"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "1073741824\n",
				"sys/fs/cgroup/memory.max":                  "max\n",
				"proc/meminfo":                              meminfo8G,
			},
			bytes: 7 * (1 << 30) / 10, sourceHas: "cgroup v2 /sys/fs/cgroup/kubepods/pod1/c1/memory.max", totalShould: 1 << 30,
		},
		{
			name:  "cgroup v2 namespaced: the root is the container's",
			files: v2Root("536870912"),
			bytes: 7 * (512 << 20) / 10, sourceHas: "cgroup v2", totalShould: 512 << 20,
		},
		{
			name:  "cgroup v2 without a limit: the machine",
			files: v2Root("max"),
			bytes: HostCap, sourceHas: "meminfo", totalShould: 8 << 30,
		},
		{
			name: "cgroup v1 with a limit",
			files: map[string]string{
				"proc/self/cgroup": "5:devices:/\n4:memory:/docker/abc\n3:cpu,cpuacct:/\n",
				"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "2147483648\n",
				"proc/meminfo": meminfo8G,
			},
			bytes: 7 * (2 << 30) / 10, sourceHas: "cgroup v1 /sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", totalShould: 2 << 30,
		},
		{
			name:  "cgroup v1 fallback to the mount's root",
			files: v1Root("4:memory:/process_api/x\n", "1073741824"),
			bytes: 7 * (1 << 30) / 10, sourceHas: "cgroup v1", totalShould: 1 << 30,
		},
		{
			name:  "cgroup v1 unlimited (page-aligned max int64): the machine",
			files: v1Root("4:memory:/\n", "9223372036854771712"),
			bytes: HostCap, sourceHas: "meminfo", totalShould: 8 << 30,
		},
		{
			name:  "a cgroup limit above the machine's memory: the machine",
			files: v2Root("68719476736"),
			bytes: HostCap, sourceHas: "meminfo", totalShould: 8 << 30,
		},
		{
			name: "a small machine: a quarter of it, below the cap",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"sys/fs/cgroup/memory.max": "max\n",
				"proc/meminfo":             "MemTotal:        1048576 kB\n",
			},
			bytes: 256 << 20, sourceHas: "meminfo", totalShould: 1 << 30,
		},
		{
			name: "cgroup limit without /proc/meminfo",
			files: map[string]string{
				"sys/fs/cgroup/memory.max": "1073741824",
			},
			bytes: 7 * (1 << 30) / 10, sourceHas: "cgroup v2", totalShould: 1 << 30,
		},
		{
			name:    "nothing readable",
			files:   map[string]string{"proc/meminfo": "MemFree: 1 kB\n"},
			wantErr: true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range c.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			l, err := Detect(fsys)
			if c.wantErr {
				if err == nil {
					t.Fatalf("Detect = %+v, want an error", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Bytes != c.bytes || l.Total != c.totalShould || !strings.Contains(l.Source, c.sourceHas) {
				t.Errorf("Detect = %+v, want %d bytes of %d from %q", l, c.bytes, c.totalShould, c.sourceHas)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"1000", 1000}, {"512MiB", 512 << 20}, {"2GiB", 2 << 30}, {"64KiB", 64 << 10}, {"1TiB", 1 << 40}, {"300B", 300},
		{"50%", 4 << 30}, {" 100% ", 8 << 30},
	} {
		got, err := Parse(c.in, 8<<30)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0", "-5MiB", "12MB", "1.5GiB", "abc", "0%", "101%", "x%", "99999999999TiB"} {
		if n, err := Parse(bad, 8<<30); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", bad, n)
		}
	}
	if _, err := Parse("50%", 0); err == nil {
		t.Error("a percentage of unknown memory must be an error")
	}
}
