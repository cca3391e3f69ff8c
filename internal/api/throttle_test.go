package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

var apiLimits = conduit.ThrottleLimits{
	LoginWindow: 15 * time.Minute, LoginPerAddr: 20, LoginPerAccount: 10,
	SignupWindow: time.Hour, SignupPerAddr: 4,
}

// throttledAPI is the API of one node with sign-in throttling, behind a
// trusted proxy (the test), so that X-Forwarded-For names the client.
func throttledAPI(t *testing.T, db *store.DB) *testAPI {
	t.Helper()
	tokens, err := auth.NewTokens([]auth.Key{testKey}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svc := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4}, conduit.WithThrottle(db, apiLimits))
	proxies, err := httpx.ParseTrustedProxies("127.0.0.1, ::1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpx.RealIP(proxies)(api.New(svc, tokens)))
	t.Cleanup(srv.Close)
	return &testAPI{t: t, url: srv.URL, tokens: tokens}
}

// from posts body to path as the client at addr.
func (a *testAPI) from(addr, path, body string) response {
	a.t.Helper()
	req, _ := http.NewRequest("POST", a.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: raw}
}

func loginBody(email, password string) string {
	b, _ := json.Marshal(map[string]any{"user": map[string]string{"email": email, "password": password}})
	return string(b)
}

// wantTooMany checks a 429 in the spec's error shape with a Retry-After
// within the window.
func wantTooMany(t *testing.T, r response, window time.Duration) {
	t.Helper()
	r.wantErrors(t, http.StatusTooManyRequests, "body")
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > window+time.Second {
		t.Errorf("Retry-After %q, want seconds within %v", r.header.Get("Retry-After"), window)
	}
}

// 300 wrong passwords in a burst are answered 429 once over the limit;
// the owner signs in from another address meanwhile, and a second node on
// the same database refuses the attacker too.
func TestLoginThrottledAcrossNodes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a, b := throttledAPI(t, db), throttledAPI(t, db)
		victim := a.register("victim")
		const attacker = "203.0.113.9"

		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		work := make(chan int)
		for range 16 {
			wg.Go(func() {
				for i := range work {
					r := a.from(attacker, "/api/users/login", loginBody(victim.email, fmt.Sprint("guess", i)))
					if r.status == http.StatusTooManyRequests {
						wantTooMany(t, r, apiLimits.LoginWindow)
					}
					mu.Lock()
					statuses[r.status]++
					mu.Unlock()
				}
			})
		}
		for i := range 300 {
			work <- i
		}
		close(work)
		wg.Wait()
		if statuses[http.StatusUnauthorized] != apiLimits.LoginPerAccount || statuses[http.StatusTooManyRequests] != 300-apiLimits.LoginPerAccount {
			t.Errorf("statuses of 300 guesses: %v; want %d × 401, the rest 429", statuses, apiLimits.LoginPerAccount)
		}

		wantTooMany(t, b.from(attacker, "/api/users/login", loginBody(victim.email, victim.password)), apiLimits.LoginWindow)
		r := b.from("198.51.100.20", "/api/users/login", loginBody(victim.email, victim.password))
		if r.status != http.StatusOK {
			t.Fatalf("the owner from another address: %d %s", r.status, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Error("login answer without Cache-Control: no-store")
		}
	})
}

// Sign-ups are limited per address.
func TestSignupThrottled(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := throttledAPI(t, db)
		signup := func(name, addr string) response {
			b, _ := json.Marshal(map[string]any{"user": map[string]string{
				"username": name, "email": name + "@example.com", "password": "password1"}})
			return a.from(addr, "/api/users", string(b))
		}
		for i := range apiLimits.SignupPerAddr {
			if r := signup(fmt.Sprint("farm", i), "203.0.113.50"); r.status != http.StatusCreated {
				t.Fatalf("sign-up %d: %d %s", i, r.status, r.body)
			}
		}
		wantTooMany(t, signup("farm-more", "203.0.113.50"), apiLimits.SignupWindow)
		if r := signup("person", "198.51.100.50"); r.status != http.StatusCreated {
			t.Errorf("sign-up from another address: %d %s", r.status, r.body)
		}
	})
}
