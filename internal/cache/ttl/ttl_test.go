package ttl

import (
	"strconv"
	"testing"
	"time"
)

func TestExpiryGenerationsAndBound(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New[int](time.Second, 3, func() time.Time { return now })

	_, ok, gen := m.Get("a")
	if ok || gen != 0 {
		t.Fatalf("empty map: ok %v, generation %d", ok, gen)
	}
	m.Put("a", 1, gen)
	if v, ok, _ := m.Get("a"); !ok || v != 1 {
		t.Fatalf("get after put = %d, %v", v, ok)
	}
	now = now.Add(time.Second)
	if _, ok, _ := m.Get("a"); !ok {
		t.Error("an entry expired before its ttl")
	}
	now = now.Add(time.Millisecond)
	if _, ok, _ := m.Get("a"); ok {
		t.Error("an entry outlived its ttl")
	}

	// A value loaded before a Clear is not stored after it.
	_, _, gen = m.Get("b")
	m.Clear()
	m.Put("b", 2, gen)
	if _, ok, _ := m.Get("b"); ok {
		t.Error("a value read before a clear was stored after it")
	}
	if m.Generation() != 1 {
		t.Errorf("Generation() = %d after one clear", m.Generation())
	}
	_, _, gen = m.Get("b")
	m.Put("b", 2, gen)
	if v, ok, _ := m.Get("b"); !ok || v != 2 {
		t.Errorf("put in the new generation: %d, %v", v, ok)
	}

	// The size bound holds.
	for i := range 10 {
		_, _, gen := m.Get(strconv.Itoa(i))
		m.Put(strconv.Itoa(i), i, gen)
		if m.Len() > 3 {
			t.Fatalf("%d entries, bound 3", m.Len())
		}
	}
}

// A full map makes room from expired entries first, and otherwise drops a
// quarter of its entries, not all of them; PutFor gives an entry its own
// lifetime.
func TestEvictionAndOwnLifetimes(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New[int](time.Minute, 8, func() time.Time { return now })
	put := func(k string, ttl time.Duration) {
		_, _, gen := m.Get(k)
		m.PutFor(k, 1, gen, ttl)
	}
	for i := range 4 {
		put("short"+strconv.Itoa(i), time.Second)
		put("long"+strconv.Itoa(i), time.Hour)
	}
	now = now.Add(2 * time.Second)
	put("new", time.Hour)
	if m.Len() != 5 {
		t.Errorf("after making room from 4 expired entries: %d entries, want 5", m.Len())
	}
	for i := range 4 {
		if _, ok, _ := m.Get("long" + strconv.Itoa(i)); !ok {
			t.Errorf("long%d was dropped while expired entries could go", i)
		}
	}
	for i := range 3 {
		put("more"+strconv.Itoa(i), time.Hour)
	}
	put("last", time.Hour) // full, nothing expired
	if n := m.Len(); n < 5 || n > 8 {
		t.Errorf("full map without expired entries kept %d of 8 (want a quarter dropped)", n)
	}
	if _, ok, _ := m.Get("last"); !ok {
		t.Error("the entry that made room was not stored")
	}
	// Replacing a key of a full map drops nothing.
	n := m.Len()
	for n < 8 {
		put("fill"+strconv.Itoa(n), time.Hour)
		n = m.Len()
	}
	put("last", time.Hour)
	if m.Len() != 8 {
		t.Errorf("replacing a key in a full map left %d entries", m.Len())
	}
}

// Range visits the live entries and stops when told to.
func TestRange(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New[int](time.Second, 10, func() time.Time { return now })
	m.PutFor("old", 1, 0, time.Millisecond)
	m.Put("a", 2, 0)
	m.Put("b", 3, 0)
	now = now.Add(10 * time.Millisecond)
	seen := map[string]int{}
	m.Range(func(k string, v int) bool { seen[k] = v; return true })
	if len(seen) != 2 || seen["a"] != 2 || seen["b"] != 3 {
		t.Errorf("Range visited %v, want a and b (old expired)", seen)
	}
	n := 0
	m.Range(func(string, int) bool { n++; return false })
	if n != 1 {
		t.Errorf("Range went on after fn returned false: %d calls", n)
	}
}
