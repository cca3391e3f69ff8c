package bench

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	// 1..10000 µs, once each: the q-quantile is q*10000 µs.
	for us := 1; us <= 10000; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		got := float64(h.quantile(q).Microseconds())
		want := q * 10000
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("q%.2f = %.0f µs, want %.0f ±2%%", q, got, want)
		}
	}
	if h.maxValue() != 10*time.Millisecond {
		t.Errorf("max = %s", h.maxValue())
	}
	// Bucket values round-trip within the stated precision at every scale.
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 123456, 1 << 30, 3_600_000_000} {
		got := bucketValue(bucketOf(v))
		if v > 0 && math.Abs(float64(got)-float64(v))/float64(v) > 1.0/64 {
			t.Errorf("value %d lands in a bucket worth %d", v, got)
		}
	}
	var m histogram
	m.merge(&h)
	if m.total.Load() != 10000 || m.quantile(0.5) != h.quantile(0.5) {
		t.Errorf("merge: total %d", m.total.Load())
	}
}
