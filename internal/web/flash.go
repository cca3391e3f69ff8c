package web

import (
	"net/http"
	"strings"
)

// flashCookie carries a one-shot confirmation ("Your article is
// published.") across the redirect after a form. It holds a code, never
// text: the page shows only the fixed message of a known code, so a forged
// or stale cookie can at worst show one of these sentences. It is read and
// cleared by the next page rendered.
const flashCookie = "conduit_flash"

// flashMessages are the codes and what they show.
var flashMessages = map[string]string{
	"welcome":   "Welcome to Conduit! Your account is ready.",
	"published": "Your article is published.",
	"updated":   "Your article is updated.",
	"deleted":   "Your article is deleted.",
	"settings":  "Your settings are saved.",
	"comment":   "Your comment is posted.",
	"avatar":    "Your new picture is saved.",
}

// setFlash makes the next page show the message of code.
func (h *handler) setFlash(w http.ResponseWriter, r *http.Request, code string) {
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: code, Path: "/", MaxAge: 60,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// takeFlash returns the message the request's flash cookie asks for ("" for
// none or an unknown code) and clears the cookie either way.
func (h *handler) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode,
	})
	return flashMessages[c.Value]
}

// hasFlash reports whether the request carries a flash cookie: such a page
// is not served from, nor kept in, the anonymous page cache.
func hasFlash(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Cookie"), flashCookie+"=")
}
