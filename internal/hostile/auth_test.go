//go:build linux

package hostile

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// The default throttling limits (README, docs/security.md "Throttling").
const (
	loginMaxPerAccount = 10
	loginMaxPerAddr    = 30
	signupMaxPerAddr   = 20
)

// countStatuses counts answers by status.
func countStatuses(rs []reply) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.status]++
	}
	return m
}

// wantThrottled checks a 429's Retry-After.
func wantThrottled(t *testing.T, what string, r reply) {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Errorf("%s: %s, want 429", what, r)
		return
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("%s: 429 with Retry-After %q", what, r.header.Get("Retry-After"))
	}
}

func signIn(email, password string) req {
	return req{method: "POST", path: "/api/users/login", body: jsonBody(map[string]any{
		"user": map[string]string{"email": email, "password": password}})}
}

func signInForm(email, password string) req {
	return req{method: "POST", path: "/login", body: url.Values{"email": {email}, "password": {password}}.Encode()}
}

// bruteForce: one address guesses one account's password, 8 guesses at a
// time; another sprays one guess at each of many accounts. Exactly as many
// guesses are checked as the limits allow, the rest get 429 with
// Retry-After (API and site), even a right guess from a guessing address;
// the owner still signs in from their own address.
func bruteForce(t *testing.T, s *suite) {
	v := s.f.victim
	attacker := s.n.client("127.0.0.20")
	rs := concurrently(50, 8, func(i int) reply { return attacker.do(t, signIn(v.email, fmt.Sprintf("wrong-%d", i))) })
	counts := countStatuses(rs)
	t.Logf("50 guesses at one account from one address: %v", counts)
	if counts[http.StatusUnauthorized] != loginMaxPerAccount || counts[http.StatusTooManyRequests] != 50-loginMaxPerAccount {
		t.Errorf("50 guesses at one account: %v, want %d × 401 and the rest 429", counts, loginMaxPerAccount)
	}
	for _, r := range rs {
		if r.status == http.StatusTooManyRequests {
			wantThrottled(t, "a throttled guess", r)
			if !strings.Contains(string(r.body), `"errors"`) {
				t.Errorf("a throttled guess: %s, want the spec's error shape", r)
			}
		}
	}
	wantThrottled(t, "a right guess from the guessing address", attacker.do(t, signIn(v.email, v.password)))
	wantThrottled(t, "a guess through the site's form", attacker.do(t, signInForm(v.email, "wrong-form")))

	owner := s.n.client("127.0.0.21")
	decode(t, owner.do(t, signIn(v.email, v.password)), http.StatusOK, nil)
	if r := owner.do(t, signInForm(v.email, v.password)); r.status != http.StatusSeeOther {
		t.Errorf("the owner signing in through the site during the attack: %s, want 303", r)
	}

	sprayer := s.n.client("127.0.0.22")
	n := loginMaxPerAddr + 5
	rs = concurrently(n, 8, func(i int) reply {
		return sprayer.do(t, signIn(fmt.Sprintf("spray%d@example.com", i), "password-guess"))
	})
	counts = countStatuses(rs)
	t.Logf("one guess at each of %d accounts from one address: %v", n, counts)
	if counts[http.StatusUnauthorized] != loginMaxPerAddr || counts[http.StatusTooManyRequests] != n-loginMaxPerAddr {
		t.Errorf("%d guesses from one address: %v, want %d × 401 and the rest 429", n, counts, loginMaxPerAddr)
	}
	wantThrottled(t, "a right password from the spraying address", sprayer.do(t, signIn(s.f.admin.email, s.f.admin.password)))
	decode(t, owner.do(t, signIn(s.f.admin.email, s.f.admin.password)), http.StatusOK, nil)
}

// signupFlood: one address signs up over and over. Sign-ups refused at
// validation do not count; of the valid ones exactly the limit is served
// and stored, the rest get 429 (API and site) and store nothing.
func signupFlood(t *testing.T, s *suite) {
	ctx := t.Context()
	flooder := s.n.client("127.0.0.23")
	before, err := s.n.db.TableCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	user := func(name string) req {
		return req{method: "POST", path: "/api/users", body: jsonBody(map[string]any{"user": map[string]string{
			"username": name, "email": name + "@example.com", "password": "password-" + name}})}
	}
	for i, r := range concurrently(10, 4, func(i int) reply { return flooder.do(t, user(fmt.Sprintf("bad name %d", i))) }) {
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("invalid sign-up %d: %s, want 422", i, r)
		}
	}
	const n = signupMaxPerAddr + 5
	rs := concurrently(n, 6, func(i int) reply { return flooder.do(t, user(fmt.Sprintf("flood%d", i))) })
	counts := countStatuses(rs)
	t.Logf("%d sign-ups from one address: %v", n, counts)
	if counts[http.StatusCreated] != signupMaxPerAddr || counts[http.StatusTooManyRequests] != n-signupMaxPerAddr {
		t.Errorf("%d sign-ups from one address: %v, want %d × 201 and the rest 429", n, counts, signupMaxPerAddr)
	}
	for i, r := range rs {
		want := http.StatusOK
		if r.status == http.StatusTooManyRequests {
			wantThrottled(t, "a sign-up over the limit", r)
			want = http.StatusNotFound
		}
		if p := flooder.do(t, req{method: "GET", path: fmt.Sprintf("/api/profiles/flood%d", i)}); p.status != want {
			t.Errorf("flood%d, signed up with %d: profile %s, want %d", i, r.status, p, want)
		}
	}
	wantThrottled(t, "a sign-up through the site's form", flooder.do(t, req{method: "POST", path: "/register",
		body: url.Values{"username": {"floodform"}, "email": {"floodform@example.com"}, "password": {"password-x"}}.Encode()}))
	after, err := s.n.db.TableCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after["users"] != before["users"]+signupMaxPerAddr {
		t.Errorf("users: %d before, %d after, want %d more", before["users"], after["users"], signupMaxPerAddr)
	}
}

// idempotencySquatting: a caller who uses a key first must not decide what
// another caller's request with the same key does. Anonymous keys are
// scoped by the body, signed-in keys by the user; and nothing is kept for
// an anonymous request that applied nothing, so anonymous callers cannot
// fill the key table.
func idempotencySquatting(t *testing.T, s *suite) {
	ctx := t.Context()
	f := &s.f
	attacker, victim := s.n.client("127.0.0.16"), s.n.client("127.0.0.17")
	before, err := s.n.db.TableCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keyed := func(q req, key string) req {
		q.header = map[string]string{"Idempotency-Key": key}
		return q
	}
	newUser := func(name string) req {
		return req{method: "POST", path: "/api/users", body: jsonBody(map[string]any{"user": map[string]string{
			"username": name, "email": name + "@example.com", "password": "password-" + name}})}
	}

	// Sign-up: the attacker takes the key first, with a body of its own.
	squat := keyed(newUser("bad name"), "signup-key")
	decode(t, attacker.do(t, squat), http.StatusUnprocessableEntity, nil)
	r := victim.do(t, keyed(newUser("newbie"), "signup-key"))
	var u struct {
		User struct{ Token, Username string }
	}
	decode(t, r, http.StatusCreated, &u)
	if u.User.Username != "newbie" || r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the victim's sign-up with a squatted key: %s", r)
	}
	if r := attacker.do(t, squat); r.status != http.StatusUnprocessableEntity || strings.Contains(string(r.body), u.User.Token) {
		t.Errorf("the attacker repeating its squat: %s, want its own 422", r)
	}

	// Sign-in: the same, with a wrong password first.
	e := f.elise
	decode(t, attacker.do(t, keyed(signIn(e.email, "wrong-password"), "signin-key")), http.StatusUnauthorized, nil)
	var in struct{ User struct{ Token string } }
	decode(t, victim.do(t, keyed(signIn(e.email, e.password), "signin-key")), http.StatusOK, &in)
	decode(t, victim.do(t, req{method: "GET", path: "/api/user", token: in.User.Token}), http.StatusOK, nil)

	// Signed in: keys are the user's own.
	article := req{method: "POST", path: "/api/articles", body: jsonBody(map[string]any{"article": map[string]any{
		"title": "Keyed", "description": "d", "body": "b", "tagList": []string{"fixture"}}})}
	mine := article
	mine.token, mine.body = f.mallory.token, `{"article":{}}`
	decode(t, attacker.do(t, keyed(mine, "article-key")), http.StatusUnprocessableEntity, nil)
	theirs := article
	theirs.token = f.author.token
	var a struct{ Article struct{ Slug string } }
	r = victim.do(t, keyed(theirs, "article-key"))
	decode(t, r, http.StatusCreated, &a)
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the author's article with a key another user used: replayed %s", r)
	}
	decode(t, victim.do(t, req{method: "DELETE", path: "/api/articles/" + a.Article.Slug, token: f.author.token}), http.StatusNoContent, nil)

	// Nothing is kept for anonymous requests that applied nothing: a
	// repeat runs again rather than replaying a stored answer.
	for i, q := range []req{newUser("bad name"), newUser(""), article, {method: "PUT", path: "/api/user", body: `{"user":{}}`},
		{method: "POST", path: "/api/profiles/admin/follow"}, signIn("nobody@example.com", "password-x")} {
		q = keyed(q, fmt.Sprintf("junk-%d", i))
		first := attacker.do(t, q)
		again := attacker.do(t, q)
		if again.status != first.status || again.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("an anonymous %s %s that applied nothing (%d) was kept: its repeat is %d, replayed %q",
				q.method, q.path, first.status, again.status, again.header.Get("Idempotent-Replayed"))
		}
	}

	after, err := s.n.db.TableCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := before
	want["users"]++           // newbie
	delete(want, "favorites") // the well-behaved client's, which it is changing meanwhile
	for table, n := range want {
		if after[table] != n {
			t.Errorf("%s: %d rows, want %d", table, after[table], n)
		}
	}
}

// tokenRevocation: stolen tokens stop working when their owner signs out
// of that device, changes the password, or signs out everywhere — in the
// API and the site; a sign-in repeated through its Idempotency-Key after a
// password change hands out no token; answers holding tokens are never
// cacheable; and a token of a user who does not exist is refused.
func tokenRevocation(t *testing.T, s *suite) {
	c := s.n.client("127.0.0.24")
	rita := register(t, c, "rita", "rita@example.com")
	works := func(token string, want int) {
		t.Helper()
		for _, path := range []string{"/api/user", "/api/articles"} {
			r := c.do(t, req{method: "GET", path: path, token: token})
			if path == "/api/articles" && want == http.StatusOK && r.status == http.StatusOK {
				continue
			}
			if r.status != want {
				t.Errorf("GET %s with a token: %s, want %d", path, r, want)
			}
			if want == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s: 401 without WWW-Authenticate", path)
			}
		}
	}
	login := func(password, key string) (reply, string) {
		t.Helper()
		q := signIn(rita.email, password)
		if key != "" {
			q.header = map[string]string{"Idempotency-Key": key}
		}
		r := c.do(t, q)
		var u struct{ User struct{ Token string } }
		if r.status == http.StatusOK {
			decode(t, r, http.StatusOK, &u)
			wantNoStore(t, "a sign-in", r)
		}
		return r, u.User.Token
	}
	_, tA := login(rita.password, "")
	_, tB := login(rita.password, "")
	works(tA, http.StatusOK)

	// Signing out of one device revokes that token only.
	decode(t, c.do(t, req{method: "POST", path: "/api/user/logout", token: tA}), http.StatusNoContent, nil)
	works(tA, http.StatusUnauthorized)
	works(tB, http.StatusOK)
	works(rita.token, http.StatusOK)

	// A new password revokes every earlier token; the answer holds a new one.
	r := c.do(t, req{method: "PUT", path: "/api/user", token: tB, body: `{"user":{"password":"password-rita-2"}}`})
	var u struct{ User struct{ Token string } }
	decode(t, r, http.StatusOK, &u)
	wantNoStore(t, "a password change", r)
	tC := u.User.Token
	works(tB, http.StatusUnauthorized)
	works(rita.token, http.StatusUnauthorized)
	works(tC, http.StatusOK)
	wantNoStore(t, "GET /api/user", c.do(t, req{method: "GET", path: "/api/user", token: tC}))
	if r, _ := login(rita.password, ""); r.status != http.StatusUnauthorized {
		t.Errorf("the old password: %s, want 401", r)
	}

	// A sign-in repeated with its key runs again (its answer held a
	// token, so it was not kept): after another password change, the
	// repeat is refused and hands out nothing.
	r1, tE := login("password-rita-2", "rita-signin")
	r2, tE2 := login("password-rita-2", "rita-signin")
	if r1.status != http.StatusOK || r2.status != http.StatusOK || r2.header.Get("Idempotent-Replayed") != "" || tE2 == tE {
		t.Errorf("a sign-in repeated with its key: %s, then %s (replayed %q): want both run", r1, r2, r2.header.Get("Idempotent-Replayed"))
	}
	decode(t, c.do(t, req{method: "PUT", path: "/api/user", token: tE, body: `{"user":{"password":"password-rita-3"}}`}), http.StatusOK, &u)
	tF := u.User.Token
	if r3, tok := login("password-rita-2", "rita-signin"); r3.status != http.StatusUnauthorized || tok != "" {
		t.Errorf("the sign-in repeated with its key after the password changed: %s, want 401", r3)
	}
	works(tE, http.StatusUnauthorized)

	// Signing out everywhere ends every token, this one too; and the
	// site's sessions.
	cookie := func(r reply) string {
		t.Helper()
		for _, ck := range (&http.Response{Header: r.header}).Cookies() {
			if ck.Name == sessionCookie {
				return ck.Value
			}
		}
		return ""
	}
	b1 := cookie(c.do(t, signInForm(rita.email, "password-rita-3")))
	b2 := cookie(c.do(t, signInForm(rita.email, "password-rita-3")))
	if b1 == "" || b2 == "" {
		t.Fatal("signing in through the site set no session cookie")
	}
	settings := func(session string, want int) {
		t.Helper()
		if r := c.do(t, req{method: "GET", path: "/settings", cookie: session}); r.status != want {
			t.Errorf("GET /settings with a session: %s, want %d", r, want)
		}
	}
	settings(b1, http.StatusOK)
	r = c.do(t, req{method: "POST", path: "/logout", cookie: b1})
	if r.status != http.StatusSeeOther {
		t.Errorf("signing out of the site: %s", r)
	}
	wantNoStore(t, "signing out of the site", r)
	settings(b1, http.StatusSeeOther) // to sign in
	settings(b2, http.StatusOK)
	works(tF, http.StatusOK)
	decode(t, c.do(t, req{method: "POST", path: "/api/user/logout-all", token: tF}), http.StatusNoContent, nil)
	for _, tok := range []string{tC, tF} {
		works(tok, http.StatusUnauthorized)
	}
	settings(b2, http.StatusSeeOther)

	// A user who does not exist (deleted, or never was): 401 in the API,
	// an anonymous visitor with the cookie cleared in the site.
	gone := s.n.tokens.Issue(1_000_000_000, 0)
	works(gone, http.StatusUnauthorized)
	r = c.do(t, req{method: "GET", path: "/", cookie: gone})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `href="/login"`) {
		t.Errorf("the home page with the session of a user who does not exist: %s", r)
	}
	if ck := (&http.Response{Header: r.header}).Cookies(); len(ck) == 0 || ck[0].Name != sessionCookie || ck[0].MaxAge >= 0 {
		t.Errorf("the session of a user who does not exist was not cleared: Set-Cookie %q", r.header.Values("Set-Cookie"))
	}
}

func wantNoStore(t *testing.T, what string, r reply) {
	t.Helper()
	if !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
		t.Errorf("%s: Cache-Control %q, want no-store", what, r.header.Get("Cache-Control"))
	}
}
