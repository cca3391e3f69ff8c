package web

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func TestRegisterSignsInWithSessionCookie(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser()
		res := b.post("/register", url.Values{"username": {"alice"}, "email": {"alice@example.com"}, "password": {"secret-pass"}})
		wantRedirect(t, res, "/")
		var c *http.Cookie
		for _, x := range res.Cookies() {
			if x.Name == sessionCookie {
				c = x
			}
		}
		if c == nil {
			t.Fatal("no session cookie")
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.MaxAge != 3600 {
			t.Errorf("cookie flags: HttpOnly=%v SameSite=%v Path=%q Secure=%v MaxAge=%d", c.HttpOnly, c.SameSite, c.Path, c.Secure, c.MaxAge)
		}
		// The cookie holds the API's token: the same token authenticates both.
		claims, err := s.tokens.Verify(c.Value)
		if err != nil || claims.UserID <= 0 {
			t.Fatalf("cookie is not a valid token: %v", err)
		}
		home := b.get("/")
		wantStatus(t, home, http.StatusOK)
		wantContains(t, home, `href="/profile/alice"`, ">Your Feed</a>", `href="/editor"`, `href="/settings"`)
		wantNotContains(t, home, `href="/login"`)
		if got := home.Header.Get("Cache-Control"); got != "private, no-store" {
			t.Errorf("signed-in page Cache-Control %q", got)
		}
	})
}

func TestRegisterRejectsBadInputWith422(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		s.browser().signUp("taken")
		tests := []struct {
			name string
			form url.Values
			want []string
		}{
			{"bad email and short password",
				url.Values{"username": {"bob"}, "email": {"not-an-email"}, "password": {"short7x"}},
				[]string{"email is invalid", "password is too short (minimum is 8 characters)"}},
			{"username taken",
				url.Values{"username": {"taken"}, "email": {"other@example.com"}, "password": {"long-enough"}},
				[]string{"username has already been taken"}},
			{"blank", url.Values{}, []string{"email can&#39;t be blank", "password can&#39;t be blank", "username can&#39;t be blank"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := s.browser()
				res := b.post("/register", tt.form)
				wantStatus(t, res, http.StatusUnprocessableEntity)
				if got := errorMessages(res.Body); strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("errors %q, want %q", got, tt.want)
				}
				if u := tt.form.Get("username"); u != "" {
					wantContains(t, res, `value="`+u+`"`)
				}
				if p := tt.form.Get("password"); p != "" {
					wantNotContains(t, res, p)
				}
				if b.session != "" {
					t.Error("a failed sign-up set a session")
				}
			})
		}
	})
}

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		s.browser().signUp("carol")
		b := s.browser()

		wantStatus(t, b.get("/login"), http.StatusOK)
		res := b.post("/login", url.Values{"email": {"carol@example.com"}, "password": {"wrong-password"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		if got := errorMessages(res.Body); len(got) != 1 || got[0] != "email or password is invalid" {
			t.Errorf("errors %q", got)
		}
		wantContains(t, res, `value="carol@example.com"`)
		wantNotContains(t, res, "wrong-password")

		// Sign-in returns to the page that asked for it, but only on this site.
		res = b.post("/login", url.Values{"email": {"carol@example.com"}, "password": {"password-carol"}, "next": {"/settings"}})
		wantRedirect(t, res, "/settings")
		wantStatus(t, b.get("/settings"), http.StatusOK)

		res = b.post("/logout", nil)
		wantRedirect(t, res, "/")
		if b.session != "" {
			t.Fatal("logout did not clear the cookie")
		}
		wantRedirect(t, b.get("/settings"), "/login?next=%2Fsettings")

		for _, evil := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"} {
			res = s.browser().post("/login", url.Values{"email": {"carol@example.com"}, "password": {"password-carol"}, "next": {evil}})
			wantRedirect(t, res, "/")
		}
	})
}

func TestLoginPageKeepsSafeNext(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		res := s.browser().get("/login?next=%2Feditor")
		wantContains(t, res, `name="next" value="/editor"`)
		res = s.browser().get("/login?next=%2F%2Fevil.example")
		wantContains(t, res, `name="next" value="/"`)
	})
}

func TestInvalidSessionCookieIsCleared(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser()
		b.session = "not.a.token"
		res := b.get("/")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, `href="/login"`)
		if b.session != "" {
			t.Error("bad cookie was not cleared")
		}
	})
}

func TestSecureCookieBehindTLS(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tests := []struct {
			name   string
			trust  bool
			tls    bool
			proto  string
			secure bool
		}{
			{"plain http", false, false, "", false},
			{"direct TLS", false, true, "", true},
			{"proxy TLS, trusted", true, false, "https", true},
			{"proxy TLS header, not trusted", false, false, "https", false},
			{"proxy plain http, trusted", true, false, "http", false},
			{"header from a peer that is not the trusted proxy", false, false, "https", false},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				opts := Options{}
				if tt.trust { // httptest requests come from 192.0.2.1
					opts.TrustedProxies = httpx.TrustedProxies{netip.MustParsePrefix("192.0.2.0/24")}
				}
				s := newSite(t, db, opts)
				form := url.Values{"username": {"u" + string(rune('a'+i))}, "email": {"u" + string(rune('a'+i)) + "@example.com"}, "password": {"password1"}}
				req := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tt.tls {
					req.TLS = tlsState
				}
				if tt.proto != "" {
					req.Header.Set("X-Forwarded-Proto", tt.proto)
				}
				rec := httptest.NewRecorder()
				s.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusSeeOther {
					t.Fatalf("status %d\n%s", rec.Code, rec.Body)
				}
				// The session cookie, and the flash beside it, alike.
				cookies := rec.Result().Cookies()
				if len(cookies) == 0 || cookies[0].Name != sessionCookie {
					t.Fatalf("cookies %v, want the session first", cookies)
				}
				for _, c := range cookies {
					if c.Secure != tt.secure {
						t.Fatalf("cookies %v, want Secure=%v", cookies, tt.secure)
					}
				}
			})
		}
	})
}

func TestSettings(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		s.browser().signUp("other")
		b := s.browser().signUp("dave")

		res := b.get("/settings")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, `name="image"`, `name="username" placeholder="Username" value="dave"`, `name="bio"`,
			`value="dave@example.com"`, `name="password" placeholder="New Password"`, ">Update Settings</button>",
			`action="/logout"`, `class="nav-link active" href="/settings"`)

		// Bad input: 422, input kept, password never echoed.
		res = b.post("/settings", url.Values{"image": {"ftp://x"}, "username": {"other"}, "bio": {"my bio"}, "email": {"dave@example.com"}, "password": {"new-secret-1"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		if got := errorMessages(res.Body); strings.Join(got, "|") != "image must be an http or https URL" {
			t.Errorf("errors %q", got)
		}
		wantContains(t, res, `value="ftp://x"`, ">my bio</textarea>")
		wantNotContains(t, res, "new-secret-1")

		res = b.post("/settings", url.Values{"image": {""}, "username": {"other"}, "email": {"dave@example.com"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantContains(t, res, "username has already been taken")

		// Success: 303 to the (renamed) profile, which shows the bio.
		res = b.post("/settings", url.Values{"image": {""}, "username": {"david"}, "bio": {"I <3 Go"}, "email": {"david@example.com"}, "password": {"new-secret-1"}})
		wantRedirect(t, res, "/profile/david")
		prof := b.get("/profile/david")
		wantContains(t, prof, "<h1>david</h1>", "I &lt;3 Go", "Edit Profile Settings")

		// The new password works; an empty password field kept nothing else from changing.
		b2 := s.browser()
		wantRedirect(t, b2.post("/login", url.Values{"email": {"david@example.com"}, "password": {"new-secret-1"}}), "/")
		res = b2.post("/settings", url.Values{"username": {"david"}, "email": {"david@example.com"}, "bio": {"x"}, "password": {""}})
		wantRedirect(t, res, "/profile/david")
		wantRedirect(t, s.browser().post("/login", url.Values{"email": {"david@example.com"}, "password": {"new-secret-1"}}), "/")
	})
}

func TestAnonymousIsSentToLogin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		a := s.browser().signUp("erin")
		slug := a.publish("Erin's post", "")
		b := s.browser()
		tests := []struct {
			method, path, want string
		}{
			{"GET", "/editor", "/login?next=%2Feditor"},
			{"GET", "/settings", "/login?next=%2Fsettings"},
			{"GET", "/editor/" + slug, "/login?next=%2Feditor%2F" + slug},
			{"GET", "/?feed=following", "/login?next=%2F%3Ffeed%3Dfollowing"},
			{"POST", "/editor", "/login?next=%2Feditor"},
			{"POST", "/settings", "/login?next=%2Fsettings"},
			{"POST", "/article/" + slug + "/favorite", "/login?next=%2Farticle%2F" + slug},
			{"POST", "/article/" + slug + "/comments", "/login?next=%2Farticle%2F" + slug},
			{"POST", "/article/" + slug + "/delete", "/login?next=%2Farticle%2F" + slug},
			{"POST", "/profile/erin/follow", "/login?next=%2Fprofile%2Ferin"},
		}
		for _, tt := range tests {
			var res response
			if tt.method == "GET" {
				res = b.get(tt.path)
			} else {
				res = b.post(tt.path, url.Values{"title": {"x"}, "body": {"x"}})
			}
			wantRedirect(t, res, tt.want)
		}
		if n := len(mustArticles(t, s)); n != 1 {
			t.Errorf("anonymous posts changed data: %d articles", n)
		}
	})
}
