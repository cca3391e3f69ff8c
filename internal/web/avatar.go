package web

import (
	"errors"
	"net/http"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/media"
)

// maxUploadBytes bounds the body of the avatar form: the picture and a
// little room for the multipart framing.
const maxUploadBytes = media.MaxAvatarBytes + 64<<10

// uploadAvatar takes a picture from the settings page (multipart form,
// field "avatar"), has media check, strip and resize it, and makes it the
// user's picture. A file that is not a usable picture re-renders the
// settings page with the reason (422).
func (h *handler) uploadAvatar(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes)
	file, _, err := r.FormFile("avatar")
	if err != nil {
		h.avatarRefused(w, r, "choose a PNG, JPEG, GIF or WebP picture of at most 5 MB")
		return
	}
	defer file.Close()
	path, err := h.opts.Media.SaveAvatar(r.Context(), file)
	var bad *media.ImageError
	if errors.As(err, &bad) {
		h.avatarRefused(w, r, bad.Reason)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Stored as an absolute URL, like a picture linked from elsewhere, so
	// every client and the settings form use it as it is. Set
	// --public-url so that it does not depend on the Host a browser used.
	image := h.opts.Media.BaseURL(r) + path
	if _, err := h.svc.UpdateUser(r.Context(), viewerID(r), conduit.UserPatch{Image: &image}); err != nil {
		h.fail(w, r, err)
		return
	}
	h.setFlash(w, r, "avatar")
	redirect(w, r, "/settings")
}

// avatarRefused shows the settings form again with why the picture was
// refused.
func (h *handler) avatarRefused(w http.ResponseWriter, r *http.Request, reason string) {
	u, err := h.svc.User(r.Context(), viewerID(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusUnprocessableEntity, &settingsPage{
		layout: layout{Title: "Settings", Active: "settings"},
		Image:  u.Image, Username: u.Username, Bio: u.Bio, Email: u.Email,
		Errors: []string{"picture " + reason},
	})
}

// BodyLimit is the most of a request body the site reads for r, when r is
// an upload that may be longer than a form's body (0 otherwise); the
// server's limiter reads that much before the request runs.
func BodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost && r.URL.Path == "/settings/avatar" {
		return maxUploadBytes
	}
	return 0
}
