package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/media"
)

// uploadImage answers PUT /api/user/image (an extension of the spec,
// docs/openapi-extensions.yml): the body is a picture (PNG, JPEG, GIF or
// WebP, found by its content), which becomes the user's image as the
// site's settings form does it: checked, cropped, resized, re-encoded
// without metadata and served under /media/.
func (h *handler) uploadImage(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); !strings.HasPrefix(mt, "image/") && mt != "application/octet-stream" {
		writeError(w, r, &httpx.Problem{Status: http.StatusUnsupportedMediaType, Field: "body",
			Msg: "must be the picture, sent with its image/* content type (or application/octet-stream)"})
		return
	}
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

// BodyLimit is the most of a request body the API reads for r, when r is
// an upload that may be longer than other requests' bodies (0 otherwise);
// the server's limiter reads that much before the request runs.
func BodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPut && r.URL.Path == "/api/user/image" {
		return media.MaxAvatarBytes + 1
	}
	return 0
}
