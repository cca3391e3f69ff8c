package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/media"
)

// uploadImage answers PUT /api/user/image (an extension of the spec,
// docs/openapi-extensions.yml): the body is a picture (PNG, JPEG, GIF or
// WebP, found by its content), which becomes the user's image as the
// site's settings form does it: checked, cropped, resized, re-encoded
// without metadata and served under /media/.
func (h *handler) uploadImage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, media.MaxAvatarBytes+1)
	path, err := h.media.SaveAvatar(r.Context(), r.Body)
	var bad *media.ImageError
	if errors.As(err, &bad) {
		writeError(w, r, conduit.ValidationError{"image": {bad.Reason}})
		return
	}
	if err != nil {
		writeError(w, r, fmt.Errorf("%w: %w", conduit.ErrUnavailable, err))
		return
	}
	image := h.media.BaseURL(r) + path
	u, err := h.svc.UpdateUser(r.Context(), auth.UserID(r.Context()), conduit.UserPatch{Image: &image})
	if err != nil {
		writeError(w, r, err)
		return
	}
	token, _ := presentedToken(r)
	h.writeUser(w, r, http.StatusOK, u, token)
}
