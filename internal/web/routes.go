package web

import "net/http"

// routes is the whole URL surface of the site. Every POST is a form that
// answers 303 (Post/Redirect/Get), or re-renders with 422 on bad input.
// Forms wrapped in once carry a one-time token and apply once however
// often they are sent (once.go); following and favoriting set a state and
// are safe to repeat as they are.
// Routes wrapped in signedIn need a signed-in user; the argument says where
// an anonymous visitor comes back to after signing in.
func (h *handler) routes() *http.ServeMux {
	mux := http.NewServeMux()

	// The "Your Feed" tab (?feed=following) needs a user too: the service
	// refuses an anonymous feed and fail sends the visitor to sign in.
	mux.HandleFunc("GET /{$}", h.cachedListPage(h.home))

	mux.HandleFunc("GET /login", h.loginForm)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("GET /register", h.registerForm)
	mux.HandleFunc("POST /register", h.register)
	mux.HandleFunc("POST /logout", h.logout)
	mux.HandleFunc("POST /logout-everywhere", signedIn(theSettings, h.logoutEverywhere))
	mux.HandleFunc("GET /settings", signedIn(thisPage, h.settingsForm))
	mux.HandleFunc("POST /settings", signedIn(thisPage, h.once(h.updateSettings)))
	mux.HandleFunc("POST /settings/avatar", signedIn(func(*http.Request) string { return "/settings" }, h.uploadAvatar))

	mux.HandleFunc("GET /notifications", signedIn(thisPage, h.notifications))
	mux.HandleFunc("POST /notifications/read", signedIn(theNotifications, h.readNotifications))

	mux.HandleFunc("GET /editor", signedIn(thisPage, h.newArticleForm))
	mux.HandleFunc("POST /editor", signedIn(thisPage, h.once(h.createArticle)))
	mux.HandleFunc("GET /editor/{slug}", signedIn(thisPage, h.editArticleForm))
	mux.HandleFunc("POST /editor/{slug}", signedIn(thisPage, h.once(h.updateArticle)))

	mux.HandleFunc("GET /article/{slug}", h.article)
	mux.HandleFunc("POST /article/{slug}/delete", signedIn(theArticle, h.once(h.deleteArticle)))
	mux.HandleFunc("POST /article/{slug}/favorite", signedIn(formNextOr(theArticle), h.favorite))
	mux.HandleFunc("POST /article/{slug}/unfavorite", signedIn(formNextOr(theArticle), h.unfavorite))
	mux.HandleFunc("POST /article/{slug}/comments", signedIn(theArticle, h.once(h.addComment)))
	mux.HandleFunc("POST /article/{slug}/comments/{id}/delete", signedIn(theArticle, h.once(h.deleteComment)))

	mux.HandleFunc("GET /search", h.cachedListPage(h.search))
	mux.HandleFunc("GET /feed.atom", h.cachedListPage(h.feed))
	mux.HandleFunc("GET /profile/{username}/feed.atom", h.cachedListPage(h.authorFeed))

	mux.HandleFunc("GET /profile/{username}", h.cachedListPage(h.profile))
	mux.HandleFunc("GET /profile/{username}/favorites", h.cachedListPage(h.profileFavorites))
	mux.HandleFunc("POST /profile/{username}/follow", signedIn(formNextOr(theProfile), h.follow))
	mux.HandleFunc("POST /profile/{username}/unfollow", signedIn(formNextOr(theProfile), h.unfollow))

	mux.HandleFunc("GET "+staticPrefix+"{file}", h.static)
	mux.HandleFunc("GET /favicon.ico", h.favicon)
	mux.Handle("GET /media/{file}", h.opts.Media) // avatars, for the site and the API's absolute URLs

	mux.HandleFunc("/", h.notFound)
	return mux
}

// signedIn serves next to signed-in users only. Anyone else is sent to the
// sign-in page, to come back afterwards to the page back names: a GET page
// itself, a form the page it was on (what was typed is lost, the place is
// not). A posted form is read before back is asked, so that back may use
// its fields.
func signedIn(back func(*http.Request) string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if viewerID(r) != 0 {
			next(w, r)
			return
		}
		if r.Method == http.MethodPost {
			// A form that cannot be read has no fields: back falls back.
			_ = parseForm(w, r)
		}
		toLogin(w, r, back(r))
	}
}

// thisPage is the requested page, for GET pages and for forms that post to
// the page they are on (the editor, the settings).
func thisPage(r *http.Request) string { return r.URL.RequestURI() }

// theNotifications is the notifications page.
func theNotifications(*http.Request) string { return "/notifications" }

// theSettings is the settings page, where "sign out everywhere" is.
func theSettings(*http.Request) string { return "/settings" }

// theArticle is the page of the article in the path.
func theArticle(r *http.Request) string { return articlePath(r.PathValue("slug")) }

// theProfile is the page of the profile in the path.
func theProfile(r *http.Request) string { return profilePath(r.PathValue("username")) }

// formNextOr is the form's "next" field (the page a button was on, such as
// a list), or fallback's page when the form has none on this site.
func formNextOr(fallback func(*http.Request) string) func(*http.Request) string {
	return func(r *http.Request) string { return backTo(r, fallback(r)) }
}
