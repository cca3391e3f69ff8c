package api

import (
	"net/http"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

// searchResponse (an extension of the spec, docs/openapi-extensions.yml):
// articles in the spec's list shape, plus profiles and tags whose names
// start with the text.
type searchResponse struct {
	Articles      []articleDTO `json:"articles"`
	ArticlesCount int          `json:"articlesCount"`
	Users         []profileDTO `json:"users"`
	Tags          []string     `json:"tags"`
}

// search answers GET /api/search?q=…&limit=…&offset=….
func (h *handler) search(w http.ResponseWriter, r *http.Request) {
	v := conduit.ValidationError{}
	limit, offset := queryInt(r, "limit", v), queryInt(r, "offset", v)
	if err := v.Err(); err != nil {
		writeError(w, r, err)
		return
	}
	q, err := conduit.ParseSearch(r.URL.Query().Get("q"), limit, offset)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := h.svc.Search(r.Context(), auth.UserID(r.Context()), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	img := h.images(r)
	list := toArticles(res.Articles, img)
	out := searchResponse{Articles: list.Articles, ArticlesCount: list.ArticlesCount, Users: make([]profileDTO, len(res.Users)), Tags: res.Tags}
	for i, p := range res.Users {
		out.Users[i] = toProfile(p, img)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
