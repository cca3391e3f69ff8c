package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// signedInAs reports whether the browser's session shows user in the
// navigation.
func signedInAs(t *testing.T, b *browser, user string) bool {
	t.Helper()
	res := b.get("/")
	wantStatus(t, res, http.StatusOK)
	return strings.Contains(res.Body, `href="/profile/`+user+`"`) && !strings.Contains(res.Body, `href="/login"`)
}

// signIn signs in a new browser.
func (s *site) signIn(email, password string) *browser {
	s.t.Helper()
	b := s.browser()
	wantRedirect(s.t, b.post("/login", url.Values{"email": {email}, "password": {password}}), "/")
	return b
}

// wantNoStore checks that a response setting the session cookie may be
// kept by no cache.
func wantNoStore(t *testing.T, res response) {
	t.Helper()
	if got := res.Header.Get("Cache-Control"); !strings.Contains(got, "no-store") {
		t.Errorf("%s %s sets a cookie with Cache-Control %q, want no-store", res.Request.Method, res.Request.URL, got)
	}
}

// Signing out revokes this browser's token: a copy of the cookie kept
// elsewhere no longer signs in. The user's other sessions stay.
func TestLogoutRevokesToken(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("frank")
		other := s.signIn("frank@example.com", "password-frank")
		stolen := b.session

		res := b.post("/logout", nil)
		wantRedirect(t, res, "/")
		wantNoStore(t, res)
		if b.session != "" {
			t.Fatal("cookie not cleared")
		}
		replay := s.browser()
		replay.session = stolen
		if res := replay.get("/settings"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Errorf("signed-out cookie on /settings: %d %q, want a redirect to sign in", res.StatusCode, res.Header.Get("Location"))
		}
		if replay.session != "" {
			t.Error("the revoked cookie was not cleared")
		}
		if !signedInAs(t, other, "frank") {
			t.Error("signing out of one browser signed out the other")
		}
	})
}

// "Sign out everywhere" on the settings page signs out every browser; a
// password change signs out the others and keeps this one, with a new
// cookie.
func TestSignOutEverywhereAndPasswordChange(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("gina")
		other := s.signIn("gina@example.com", "password-gina")

		old := b.session
		res := b.post("/settings", url.Values{"username": {"gina"}, "email": {"gina@example.com"}, "password": {"brand-new-pass"}})
		wantRedirect(t, res, "/profile/gina")
		wantNoStore(t, res)
		if b.session == old || b.session == "" {
			t.Fatal("a password change did not renew the cookie")
		}
		if !signedInAs(t, b, "gina") {
			t.Error("the browser that changed the password was signed out")
		}
		if signedInAs(t, other, "gina") {
			t.Error("another browser stayed signed in after the password change")
		}

		other = s.signIn("gina@example.com", "brand-new-pass")
		settings := b.get("/settings")
		wantContains(t, settings, `action="/logout-everywhere"`, "Sign out everywhere</button>")
		res = b.post("/logout-everywhere", nil)
		wantRedirect(t, res, "/login")
		wantNoStore(t, res)
		if b.session != "" || signedInAs(t, b, "gina") || signedInAs(t, other, "gina") {
			t.Error("a browser stayed signed in after signing out everywhere")
		}
		wantRedirect(t, s.browser().post("/logout-everywhere", nil), "/login?next=%2Fsettings")
	})
}

// A cookie whose user no longer exists makes the visitor anonymous and is
// cleared, on every page.
func TestSessionOfUserGone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		for _, path := range []string{"/", "/settings"} {
			b := s.browser()
			b.session = s.tokens.Issue(1_000_000, 0)
			res := b.get(path)
			if path == "/" {
				wantStatus(t, res, http.StatusOK)
				wantContains(t, res, `href="/login"`)
			} else if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
				t.Errorf("%s: %d %q, want a redirect to sign in", path, res.StatusCode, res.Header.Get("Location"))
			}
			if b.session != "" {
				t.Errorf("%s: the cookie of a user who is gone was not cleared", path)
			}
		}
	})
}

// Signing in and up answer with a cookie no cache may keep.
func TestSessionCookieNoStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser()
		res := b.post("/register", url.Values{"username": {"hank"}, "email": {"hank@example.com"}, "password": {"password-hank"}})
		wantRedirect(t, res, "/")
		wantNoStore(t, res)
		res = s.browser().post("/login", url.Values{"email": {"hank@example.com"}, "password": {"password-hank"}})
		wantRedirect(t, res, "/")
		wantNoStore(t, res)
	})
}

// userReads counts user records read from the database.
type userReads struct {
	conduit.Store
	n atomic.Int64
}

func (s *userReads) UserByID(ctx context.Context, id int64) (conduit.User, error) {
	s.n.Add(1)
	return s.Store.UserByID(ctx, id)
}

// Signed-in pages show the user from the cached account the session check
// loaded: no query of the user per page view.
func TestSignedInPagesReadUserFromCache(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := &userReads{Store: db}
		s := newSite(t, db, Options{})
		s.svc = conduit.NewService(st, cache.NewMemory(100).WithHold(0), auth.Bcrypt{Cost: 4})
		s.handler = New(s.svc, s.tokens, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
		b := s.browser().signUp("ivy")
		wantContains(t, b.get("/settings"), `value="ivy@example.com"`) // warms the cache
		before := st.n.Load()
		for range 5 {
			wantContains(t, b.get("/"), `href="/profile/ivy"`)
			wantContains(t, b.get("/settings"), `value="ivy@example.com"`)
		}
		if n := st.n.Load() - before; n != 0 {
			t.Errorf("10 signed-in page views read the user %d times, want 0", n)
		}
	})
}

// Too many failed sign-ins from one address: the form is shown again with
// a message, status 429 and Retry-After; another address still signs in.
func TestLoginFormThrottled(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		limits := conduit.ThrottleLimits{LoginWindow: time.Minute, LoginPerAddr: 3, LoginPerAccount: 3}
		s.svc = conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4}, conduit.WithThrottle(db, limits))
		s.handler = New(s.svc, s.tokens, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
		s.browser().signUp("jill")
		from := func(addr, password string) response {
			req := formRequest("/login", url.Values{"email": {"jill@example.com"}, "password": {password}})
			req.RemoteAddr = addr + ":40000"
			return s.browser().do(req)
		}
		for range 3 {
			wantStatus(t, from("203.0.113.1", "wrong"), http.StatusUnprocessableEntity)
		}
		res := from("203.0.113.1", "password-jill")
		wantStatus(t, res, http.StatusTooManyRequests)
		wantContains(t, res, "too many sign-in attempts; try again in ", " seconds", `value="jill@example.com"`)
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
			t.Errorf("Retry-After %q", res.Header.Get("Retry-After"))
		}
		wantRedirect(t, from("198.51.100.1", "password-jill"), "/")
	})
}
