package seed

import (
	"math"
	"math/rand/v2"
)

// powerLaw draws ranks 0..n-1 with probability roughly proportional to
// (rank+1)^-alpha, by inverting the continuous distribution on [1, n+1):
// one math.Pow per draw, no tables.
type powerLaw struct {
	n     int
	alpha float64
	c     float64 // (n+1)^(1-alpha) - 1, or log(n+1) when alpha == 1
	inv   float64 // 1 / (1-alpha)
}

func newPowerLaw(n int, alpha float64) powerLaw {
	p := powerLaw{n: n, alpha: alpha}
	if alpha == 1 {
		p.c = math.Log(float64(n) + 1)
	} else {
		p.c = math.Pow(float64(n)+1, 1-alpha) - 1
		p.inv = 1 / (1 - alpha)
	}
	return p
}

func (p powerLaw) draw(r *rand.Rand) int {
	u := r.Float64()
	var x float64
	if p.alpha == 1 {
		x = math.Exp(u * p.c)
	} else {
		x = math.Pow(1+u*p.c, p.inv)
	}
	k := int(x) - 1
	return min(max(k, 0), p.n-1)
}

// permutation maps ranks 0..n-1 onto ids 1..n one to one, so that the most
// popular accounts and articles are spread over the id range instead of
// being the oldest ones.
type permutation struct {
	n, mul, add int64
}

func newPermutation(n int, salt uint64) permutation {
	if n <= 1 {
		return permutation{n: int64(max(n, 1)), mul: 1}
	}
	m := int64(n)/2 + 1 + int64(salt%1000)
	for gcd(m, int64(n)) != 1 {
		m++
	}
	return permutation{n: int64(n), mul: m, add: int64(salt % uint64(n))}
}

func (p permutation) id(rank int) int64 {
	return (int64(rank)*p.mul+p.add)%p.n + 1
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// degrees splits total among n entities with a heavy tail (Pareto, shape
// 1.5): most get a few, some get hundreds, none more than limit. The sum is
// exactly total (as long as total <= n*limit).
func degrees(r *rand.Rand, n int, total int64, limit int) []int32 {
	d := make([]int32, n)
	if n == 0 || total <= 0 {
		return d
	}
	limit = max(limit, 1)
	total = min(total, int64(n)*int64(limit))
	raw := make([]float64, n)
	var sum float64
	for i := range raw {
		raw[i] = 1 / math.Pow(1-r.Float64(), 1/1.5)
		sum += raw[i]
	}
	var got int64
	carry := 0.0
	for i, x := range raw {
		v := x*float64(total)/sum + carry
		k := math.Floor(v)
		carry = v - k
		k = min(k, float64(limit))
		d[i] = int32(k)
		got += int64(k)
	}
	// Rounding and the limit leave a small difference: settle it one by
	// one on random entities.
	for got < total {
		i := r.IntN(n)
		if int(d[i]) < limit {
			d[i]++
			got++
		}
	}
	for got > total {
		i := r.IntN(n)
		if d[i] > 0 {
			d[i]--
			got--
		}
	}
	return d
}
