package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
)

// sessionCookie holds the same signed token the JSON API hands out. The
// server keeps no session state, so any node can serve any request.
const sessionCookie = "conduit_session"

// session reads the session cookie and puts the signed-in user's id in the
// request context. A bad or expired token makes the request anonymous and
// clears the cookie.
func (h *handler) session(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		id, err := h.tokens.Verify(c.Value)
		if err != nil {
			h.clearSession(w, r)
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithUserID(r.Context(), id)))
	})
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

func (h *handler) setSession(w http.ResponseWriter, r *http.Request, userID int64) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    h.tokens.Issue(userID),
		Path:     "/",
		MaxAge:   int(h.tokens.TTL() / time.Second),
		HttpOnly: true,
		Secure:   h.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

func (h *handler) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
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
