package web

import (
	"net/http"
	"net/url"

	"github.com/conduit-dev/conduit/internal/conduit"
)

func (h *handler) settingsForm(w http.ResponseWriter, r *http.Request) {
	u, err := h.svc.User(r.Context(), viewerID(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, &settingsPage{
		layout: layout{Title: "Settings", Active: "settings"},
		Image:  u.Image, Username: u.Username, Bio: u.Bio, Email: u.Email,
	})
}

// updateSettings changes the account; an empty password field keeps the
// current password.
func (h *handler) updateSettings(w http.ResponseWriter, r *http.Request) {
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
	u, err := h.svc.UpdateUser(r.Context(), viewerID(r), patch)
	if msgs, ok := formErrors(err); ok {
		p.Errors = msgs
		h.render(w, r, http.StatusUnprocessableEntity, p)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.setFlash(w, r, "settings")
	redirect(w, r, "/profile/"+url.PathEscape(u.Username))
}
