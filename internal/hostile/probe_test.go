//go:build linux

package hostile

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// probe is the well-behaved client: a signed-in user reading the API and
// the site and favoriting an article, one request at a time with a short
// pause, as a person or an app would.
type probe struct {
	c      *client
	token  string
	slug   string
	author string
}

// probePause is the think time between the probe's requests.
const probePause = 5 * time.Millisecond

// steps is one round of the probe; it leaves the database as it found it
// (the favorite is taken back).
func (p *probe) steps() []struct {
	q    req
	want int
} {
	a := "/api/articles/" + p.slug
	return []struct {
		q    req
		want int
	}{
		{req{method: "GET", path: "/api/articles?limit=10", token: p.token}, http.StatusOK},
		{req{method: "GET", path: a, token: p.token}, http.StatusOK},
		{req{method: "GET", path: "/api/user", token: p.token}, http.StatusOK},
		{req{method: "GET", path: a + "/comments", token: p.token}, http.StatusOK},
		{req{method: "POST", path: a + "/favorite", token: p.token}, http.StatusOK},
		{req{method: "DELETE", path: a + "/favorite", token: p.token}, http.StatusOK},
		{req{method: "GET", path: "/", cookie: p.token}, http.StatusOK},
		{req{method: "GET", path: "/article/" + p.slug, cookie: p.token}, http.StatusOK},
		{req{method: "GET", path: "/profile/" + p.author, cookie: p.token}, http.StatusOK},
	}
}

// rounds runs n rounds and returns every request's latency.
func (p *probe) rounds(t *testing.T, n int) []time.Duration {
	var lat []time.Duration
	for range n {
		lat = p.round(t, lat)
	}
	return lat
}

// minRounds is the fewest rounds measured during an attack: with over
// 100 requests, the p99 is not simply the slowest one, which on a shared
// machine may be any request's bad luck.
const minRounds = 12

// until runs rounds until stop is closed, finishing the round it is in,
// and at least minRounds of them. (A short attack is over before that;
// the later rounds then measure the node just after it.)
func (p *probe) until(t *testing.T, stop <-chan struct{}) []time.Duration {
	var lat []time.Duration
	for n := 1; ; n++ {
		lat = p.round(t, lat)
		if n < minRounds {
			continue
		}
		select {
		case <-stop:
			return lat
		default:
		}
	}
}

// round runs the steps once. Every request must get its expected answer:
// a well-behaved client is never refused, shed or left waiting for good.
func (p *probe) round(t *testing.T, lat []time.Duration) []time.Duration {
	for _, s := range p.steps() {
		r, err := p.c.try(s.q)
		switch {
		case err != nil:
			t.Errorf("well-behaved client: %s %s: %v", s.q.method, s.q.path, err)
		case r.status != s.want:
			t.Errorf("well-behaved client: %s %s: %s, want %d", s.q.method, s.q.path, r, s.want)
		default:
			lat = append(lat, r.took)
		}
		time.Sleep(probePause)
	}
	return lat
}

// percentile is the q-quantile of ds (nearest rank); 0 when ds is empty.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
