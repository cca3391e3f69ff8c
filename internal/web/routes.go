package web

import "net/http"

// routes is the whole URL surface of the site. Every POST is a form that
// answers 303 (Post/Redirect/Get), or re-renders with 422 on bad input.
func (h *handler) routes() *http.ServeMux {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /{$}", h.cachedListPage(h.home))

	mux.HandleFunc("GET /login", h.loginForm)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("GET /register", h.registerForm)
	mux.HandleFunc("POST /register", h.register)
	mux.HandleFunc("POST /logout", h.logout)
	mux.HandleFunc("POST /logout-everywhere", h.logoutEverywhere)
	mux.HandleFunc("GET /settings", h.settingsForm)
	mux.HandleFunc("POST /settings", h.updateSettings)

	mux.HandleFunc("GET /editor", h.newArticleForm)
	mux.HandleFunc("POST /editor", h.createArticle)
	mux.HandleFunc("GET /editor/{slug}", h.editArticleForm)
	mux.HandleFunc("POST /editor/{slug}", h.updateArticle)

	mux.HandleFunc("GET /article/{slug}", h.article)
	mux.HandleFunc("POST /article/{slug}/delete", h.deleteArticle)
	mux.HandleFunc("POST /article/{slug}/favorite", h.favorite)
	mux.HandleFunc("POST /article/{slug}/unfavorite", h.unfavorite)
	mux.HandleFunc("POST /article/{slug}/comments", h.addComment)
	mux.HandleFunc("POST /article/{slug}/comments/{id}/delete", h.deleteComment)

	mux.HandleFunc("GET /profile/{username}", h.cachedListPage(h.profile))
	mux.HandleFunc("GET /profile/{username}/favorites", h.cachedListPage(h.profileFavorites))
	mux.HandleFunc("POST /profile/{username}/follow", h.follow)
	mux.HandleFunc("POST /profile/{username}/unfollow", h.unfollow)

	mux.HandleFunc("GET "+staticPrefix+"{file}", h.static)
	mux.HandleFunc("GET /favicon.ico", h.favicon)

	mux.HandleFunc("/", h.notFound)
	return mux
}
