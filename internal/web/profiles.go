package web

import (
	"context"
	"net/http"
	"net/url"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

func profilePath(username string) string { return "/profile/" + url.PathEscape(username) }

// profile shows a user's own articles.
func (h *handler) profile(w http.ResponseWriter, r *http.Request) {
	h.profileTab(w, r, false)
}

// profileFavorites shows the articles a user favorited.
func (h *handler) profileFavorites(w http.ResponseWriter, r *http.Request) {
	h.profileTab(w, r, true)
}

func (h *handler) profileTab(w http.ResponseWriter, r *http.Request, favorites bool) {
	id := viewerID(r)
	prof, err := h.svc.Profile(r.Context(), id, r.PathValue("username"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	n := pageNumber(r.URL.Query())
	f := conduit.ArticleFilter{Author: prof.Username, Limit: perPage, Offset: (n - 1) * perPage}
	empty := "No articles are here... yet."
	if favorites {
		f = conduit.ArticleFilter{FavoritedBy: prof.Username, Limit: perPage, Offset: (n - 1) * perPage}
		empty = "No favorited articles yet."
	}
	list, err := h.svc.Articles(r.Context(), id, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.SetSurrogateKeys(w.Header(), append(conduit.ListKeys(f, list), conduit.UserKey(prof.ID))...)
	active := ""
	if prof.ID == id {
		active = "profile"
	}
	p := &profilePage{
		layout:    layout{Title: prof.Username, Active: active, Feed: authorFeed(prof.Username)},
		Profile:   prof,
		IsSelf:    id != 0 && prof.ID == id,
		Favorites: favorites,
		Here:      r.URL.RequestURI(),
		List:      articleList{Empty: empty},
	}
	h.render(w, r, p.List.fill(r, n, list, h.fragments), p)
}

func (h *handler) follow(w http.ResponseWriter, r *http.Request) {
	h.setFollow(w, r, h.svc.Follow)
}

func (h *handler) unfollow(w http.ResponseWriter, r *http.Request) {
	h.setFollow(w, r, h.svc.Unfollow)
}

// setFollow runs a follow use case and goes back to the page the button
// was on, or to the profile.
func (h *handler) setFollow(w http.ResponseWriter, r *http.Request,
	change func(ctx context.Context, viewerID int64, username string) (conduit.Profile, error)) {
	if _, back, ok := runButton(h, w, r, "username", profilePath, change); ok {
		redirect(w, r, back)
	}
}
