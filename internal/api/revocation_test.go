package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
)

// Responses holding a token are stored by no cache.
func TestTokenResponsesNoStore(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("nostore")
		for name, r := range map[string]response{
			"register": a.do("POST", "/api/users", "", map[string]any{"user": map[string]string{
				"username": "nostore_other", "email": "nostore_other@example.com", "password": "password1"}}),
			"login": a.do("POST", "/api/users/login", "", map[string]any{"user": map[string]string{
				"email": u.email, "password": u.password}}),
			"current user": a.do("GET", "/api/user", u.token, nil),
			"update user":  a.do("PUT", "/api/user", u.token, map[string]any{"user": map[string]string{"bio": "b"}}),
		} {
			if r.status >= 300 {
				t.Fatalf("%s: status %d: %s", name, r.status, r.body)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s: Cache-Control %q, want no-store", name, got)
			}
		}
	})
}

// userToken returns the token of a {"user": …} answer.
func userToken(t *testing.T, r response, status int) string {
	t.Helper()
	var got struct{ User userDTO }
	r.want(t, status, &got)
	if got.User.Token == "" {
		t.Fatalf("no token in %s", r.body)
	}
	return got.User.Token
}

// Signing out (one token), signing out everywhere and changing the
// password revoke tokens at once: they get 401 even where anonymous
// callers are served, so clients learn to sign in again.
func TestTokenRevocation(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("revoke")
		login := func() string {
			return userToken(t, a.do("POST", "/api/users/login", "", map[string]any{"user": map[string]string{
				"email": u.email, "password": u.password}}), 200)
		}
		works := func(token string, ok bool) {
			t.Helper()
			for _, path := range []string{"/api/user", "/api/articles"} {
				r := a.do("GET", path, token, nil)
				if ok && r.status != 200 || !ok && r.status != http.StatusUnauthorized {
					t.Errorf("GET %s: status %d, want ok=%v", path, r.status, ok)
				}
			}
		}
		phone := login()
		works(u.token, true)
		works(phone, true)
		// GET /api/user hands back the token it was given, not a new one.
		if got := userToken(t, a.do("GET", "/api/user", phone, nil), 200); got != phone {
			t.Error("GET /api/user minted a new token")
		}

		a.do("POST", "/api/user/logout", phone, nil).want(t, http.StatusNoContent, nil)
		works(phone, false)
		works(u.token, true)
		a.do("POST", "/api/user/logout", phone, nil).wantErrors(t, http.StatusUnauthorized)

		// A password change: the old tokens stop working, the answer's works.
		laptop := login()
		fresh := userToken(t, a.do("PUT", "/api/user", u.token, map[string]any{"user": map[string]string{
			"password": "changed password"}}), 200)
		u.password = "changed password"
		works(u.token, false)
		works(laptop, false)
		works(fresh, true)
		// An update without a new password keeps the token.
		if got := userToken(t, a.do("PUT", "/api/user", fresh, map[string]any{"user": map[string]string{"bio": "x"}}), 200); got != fresh {
			t.Error("an update without a password change replaced the token")
		}

		// Signing out everywhere.
		other := login()
		a.do("POST", "/api/user/logout-all", fresh, nil).want(t, http.StatusNoContent, nil)
		works(fresh, false)
		works(other, false)
		works(login(), true)
	})
}

// legacyToken is a token as issued before revocation existed: no
// generation, no token id.
func legacyToken(t *testing.T, userID int64) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now().Unix()
	signing := enc(map[string]string{"alg": "HS256", "typ": "JWT", "kid": testKey.ID}) + "." +
		enc(map[string]any{"sub": strconv.FormatInt(userID, 10), "iat": now, "exp": now + 3600})
	return signing + "." + base64.RawURLEncoding.EncodeToString(hmacSHA256(testKey.Secret, signing))
}

// Tokens issued before revocation existed keep working, as generation 0,
// until the user revokes them.
func TestTokenFromBeforeRevocation(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("legacy")
		var me struct{ User userDTO }
		a.do("GET", "/api/user", u.token, nil).want(t, 200, &me)
		claims, err := a.tokens.Verify(u.token)
		if err != nil {
			t.Fatal(err)
		}
		old := legacyToken(t, claims.UserID)
		a.do("GET", "/api/user", old, nil).want(t, 200, nil)
		a.do("POST", "/api/user/logout", old, nil).want(t, http.StatusNoContent, nil)
		a.do("GET", "/api/user", old, nil).wantErrors(t, http.StatusUnauthorized)
		a.do("GET", "/api/user", u.token, nil).want(t, 200, nil)
	})
}

// A token whose user no longer exists is refused like any bad token.
func TestTokenOfUserGone(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		gone := issueFor(t, []auth.Key{testKey}, time.Hour, 1_000_000)
		for _, path := range []string{"/api/user", "/api/articles", "/api/tags"} {
			r := a.do("GET", path, gone, nil)
			r.wantErrors(t, http.StatusUnauthorized)
			if r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", path)
			}
		}
	})
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}
