package web

import (
	"net/http"
	"strconv"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// addComment posts a comment; an empty one re-renders the article with 422.
func (h *handler) addComment(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if err := parseForm(w, r); err != nil {
		h.fail(w, r, err)
		return
	}
	body := r.PostForm.Get("body")
	_, err := h.svc.AddComment(r.Context(), viewerID(r), slug, body)
	if msgs, ok := formErrors(err); ok {
		p, perr := h.articlePage(r, slug)
		if perr != nil {
			h.fail(w, r, perr)
			return
		}
		p.CommentBody, p.Errors = body, msgs
		h.render(w, r, http.StatusUnprocessableEntity, p)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.setFlash(w, r, "comment")
	redirect(w, r, articlePath(slug)+"#comments")
}

// deleteComment removes a comment; only its author may.
func (h *handler) deleteComment(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, conduit.ErrNotFound)
		return
	}
	if err := h.svc.DeleteComment(r.Context(), viewerID(r), slug, id); err != nil {
		h.fail(w, r, err)
		return
	}
	redirect(w, r, articlePath(slug)+"#comments")
}
