package web

import (
	"net/http"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// search shows the articles matching ?q= (ranked, paged like the other
// lists), and the users and tags whose names start with it. Without a
// query it shows just the search form.
func (h *handler) search(w http.ResponseWriter, r *http.Request) {
	text := r.URL.Query().Get("q")
	p := &searchPage{layout: layout{Title: "Search", Active: "search"}, Query: text,
		List: articleList{Empty: "No articles match your search."}}
	if text == "" {
		h.render(w, r, http.StatusOK, p)
		return
	}
	n := pageNumber(r.URL.Query())
	offset := (n - 1) * perPage
	past := offset >= conduit.SearchWindow // deeper than ranked results go: count only
	if past {
		offset = 0
	}
	q, err := conduit.ParseSearch(text, perPage, offset)
	if msgs, ok := formErrors(err); ok {
		p.Errors = msgs
		h.render(w, r, http.StatusUnprocessableEntity, p)
		return
	}
	res, err := h.svc.Search(r.Context(), viewerID(r), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if past {
		res.Articles.Articles = nil
	}
	p.Title = "Search: " + text
	p.Users, p.Tags = res.Users, res.Tags
	h.render(w, r, p.List.fill(r, n, res.Articles, h.fragments), p)
}
