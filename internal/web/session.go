package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
)

// sessionCookie holds the same signed token the JSON API hands out. Any
// node can check it: the token names the user and its generation, and the
// revocation check reads the cached account (conduit.Service.Authenticate).
const sessionCookie = "conduit_session"

type signedInKey struct{}

// session reads the session cookie and puts the signed-in user in the
// request context. A bad, expired or revoked token, or one whose user no
// longer exists, makes the request anonymous and clears the cookie; a
// database that cannot tell is a 503. Static files need no user and skip
// the check.
func (h *handler) session(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" || strings.HasPrefix(r.URL.Path, staticPrefix) || r.URL.Path == "/favicon.ico" {
			next.ServeHTTP(w, r)
			return
		}
		claims, err := h.tokens.Verify(c.Value)
		if err != nil {
			h.clearSession(w, r)
			next.ServeHTTP(w, r)
			return
		}
		u, err := h.svc.Authenticate(r.Context(), conduit.Token(claims))
		if errors.Is(err, conduit.ErrUnauthenticated) {
			h.clearSession(w, r)
			next.ServeHTTP(w, r)
			return
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		ctx := context.WithValue(auth.WithClaims(r.Context(), claims), signedInKey{}, u)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// sessionUser returns the signed-in user (without password hash) as the
// session check loaded it, from the cache: pages need no query of their
// own for the navigation or the settings form.
func sessionUser(r *http.Request) (conduit.User, bool) {
	u, ok := r.Context().Value(signedInKey{}).(conduit.User)
	return u, ok
}

// secure reports whether the browser reached us over TLS, directly or
// through a trusted TLS-terminating proxy.
func (h *handler) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return h.opts.TrustedProxies.IsProxy(r) &&
		strings.EqualFold(strings.TrimSpace(firstValue(r.Header.Get("X-Forwarded-Proto"))), "https")
}

// firstValue returns the first entry of a comma-separated header (the one
// the outermost proxy wrote).
func firstValue(s string) string {
	v, _, _ := strings.Cut(s, ",")
	return v
}

// setSession signs u in with a new token of u's current generation. The
// response holds a token: no cache may keep it.
func (h *handler) setSession(w http.ResponseWriter, r *http.Request, u conduit.User) {
	h.setCookie(w, r, h.tokens.Issue(u.ID, u.TokenGen), int(h.tokens.TTL()/time.Second))
}

func (h *handler) clearSession(w http.ResponseWriter, r *http.Request) {
	h.setCookie(w, r, "", -1)
}

func (h *handler) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   h.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// viewerID is the signed-in user's id, or 0.
func viewerID(r *http.Request) int64 { return auth.UserID(r.Context()) }

// redirect answers a form post or a GET with 303 See Other, so the browser
// follows with a GET (Post/Redirect/Get).
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// toLogin sends an anonymous user to the sign-in page, coming back to
// where they were (or to next) afterwards.
func toLogin(w http.ResponseWriter, r *http.Request, next string) {
	if next == "" && r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	to := "/login"
	if next = safeNext(next); next != "/" {
		to += "?next=" + url.QueryEscape(next)
	}
	redirect(w, r, to)
}

// safeNext returns next when it is a path on this site, else "/", so that
// a crafted link cannot bounce a user to another host after signing in.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
