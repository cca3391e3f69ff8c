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
