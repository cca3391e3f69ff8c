package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records latencies in microseconds in log-linear buckets: 64
// linear sub-buckets per power of two, so any recorded value is known to
// within 1/64 (1.6%) of itself, from 1 µs to hours, in ~2,300 counters.
// Recording is a few atomic adds, safe from any goroutine.
type histogram struct {
	counts [histBuckets]atomic.Int64
	total  atomic.Int64
	max    atomic.Int64
}

const (
	subBits     = 6
	subBuckets  = 1 << subBits
	histBuckets = subBuckets * 36
)

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	shift := bits.Len64(us) - subBits - 1
	i := subBuckets + shift*subBuckets + int(us>>shift) - subBuckets
	return min(i, histBuckets-1)
}

// bucketValue is a representative value (the middle) of bucket i.
func bucketValue(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := (i - subBuckets) / subBuckets
	m := uint64((i-subBuckets)%subBuckets + subBuckets)
	return m<<shift + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	us := max(d.Microseconds(), 0)
	h.counts[bucketOf(uint64(us))].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// merge adds o's counts into h (not concurrently with recording into o).
func (h *histogram) merge(o *histogram) {
	for i := range o.counts {
		if n := o.counts[i].Load(); n > 0 {
			h.counts[i].Add(n)
		}
	}
	h.total.Add(o.total.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// quantile returns the latency below which a fraction q of values fall.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := min(int64(bucketValue(i)), h.max.Load())
			return time.Duration(v) * time.Microsecond
		}
	}
	return time.Duration(h.max.Load()) * time.Microsecond
}

func (h *histogram) maxValue() time.Duration {
	return time.Duration(h.max.Load()) * time.Microsecond
}
