package web

import (
	"net/http"
	"net/url"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
)

// settingsForm shows the account as the session check loaded it (cached).
func (h *handler) settingsForm(w http.ResponseWriter, r *http.Request) {
	u, ok := sessionUser(r)
	if !ok { // signedIn in the route table lets only signed-in users here
		h.fail(w, r, conduit.ErrUnauthenticated)
		return
	}
	h.render(w, r, http.StatusOK, &settingsPage{
		layout: layout{Title: "Settings", Active: "settings"},
		Image:  u.Image, Username: u.Username, Bio: u.Bio, Email: u.Email,
	})
}

// updateSettings changes the account; an empty password field keeps the
// current password. A new password signs out every other session; this
// one gets a new cookie.
func (h *handler) updateSettings(w http.ResponseWriter, r *http.Request) {
	c, ok := auth.ClaimsFrom(r.Context())
	if !ok {
		h.fail(w, r, conduit.ErrUnauthenticated)
		return
	}
	if err := parseForm(w, r); err != nil {
		h.fail(w, r, err)
		return
	}
	f := r.PostForm
	p := &settingsPage{
		layout: layout{Title: "Settings", Active: "settings"},
		Image:  f.Get("image"), Username: f.Get("username"), Bio: f.Get("bio"), Email: f.Get("email"),
	}
	password := f.Get("password")
	patch := conduit.UserPatch{Image: &p.Image, Username: &p.Username, Bio: &p.Bio, Email: &p.Email}
	if password != "" {
		patch.Password = &password
	}
	u, err := h.svc.UpdateUser(r.Context(), c.UserID, patch)
	if h.refused(w, r, err, p, &p.Errors) {
		return
	}
	if u.TokenGen != c.Gen {
		h.setSession(w, r, u)
	}
	h.setFlash(w, r, "settings")
	redirect(w, r, "/profile/"+url.PathEscape(u.Username))
}
