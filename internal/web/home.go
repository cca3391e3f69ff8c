package web

import (
	"net/http"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

// home shows the Global Feed, the signed-in user's feed (?feed=following)
// or the articles with one tag (?tag=x), with the popular tags beside.
func (h *handler) home(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := pageNumber(q)
	offset := (n - 1) * perPage
	p := &homePage{layout: layout{Title: "Home", Active: "home"}, Tab: "global", Tag: q.Get("tag")}
	var (
		list   conduit.ArticlePage
		err    error
		filter = conduit.ArticleFilter{Limit: perPage, Offset: offset}
	)
	switch {
	case p.Tag != "":
		p.Tab = "tag"
		p.Feed = tagFeed(p.Tag)
		p.List.Empty = "No articles are here... yet."
		filter.Tag = p.Tag
		list, err = h.svc.Articles(r.Context(), viewerID(r), filter)
	case q.Get("feed") == "following":
		// Anonymous: the service refuses (ErrUnauthenticated) and fail
		// sends the visitor to sign in, coming back here.
		p.Tab = "feed"
		p.List.Empty = "No articles are here... yet. Follow some authors to fill your feed."
		list, err = h.svc.Feed(r.Context(), viewerID(r), filter)
	default:
		p.Feed = globalFeed()
		p.List.Empty = "No articles are here... yet."
		list, err = h.svc.Articles(r.Context(), viewerID(r), filter)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if p.Tags, err = h.tagsFor(r); err != nil {
		h.fail(w, r, err)
		return
	}
	if p.PopularTags, err = h.fragments.popularTags(p.Tags); err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.SetSurrogateKeys(w.Header(), append(conduit.ListKeys(filter, list), conduit.KeyTags)...)
	h.render(w, r, p.List.fill(r, n, list, h.fragments), p)
}
