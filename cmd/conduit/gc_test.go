package main

import "testing"

func TestGCSettings(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if p, l := gcSettings(env(nil)); p != serveGCPercent || l != serveMemoryLimit {
		t.Errorf("defaults = %d, %d", p, l)
	}
	if p, l := gcSettings(env(map[string]string{"GOGC": "100"})); p != 0 || l != serveMemoryLimit {
		t.Errorf("with GOGC set = %d, %d: the environment must win", p, l)
	}
	if p, l := gcSettings(env(map[string]string{"GOMEMLIMIT": "1GiB", "GOGC": "off"})); p != 0 || l != 0 {
		t.Errorf("with both set = %d, %d", p, l)
	}
}
