// Package api serves the RealWorld Conduit JSON API under /api for mobile
// apps and other programs. Wire shapes (the {"user": …} envelopes) live here
// and nowhere else.
package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/idempotency"
	"github.com/conduit-dev/conduit/internal/media"
)

// handler holds what the API handlers use.
type handler struct {
	svc    *conduit.Service
	tokens *auth.Tokens
	media  *media.Media
}

// images returns how r's answer spells images: absolute URLs, the default
// avatar for users without a picture.
func (h *handler) images(r *http.Request) imageURL {
	return func(image string) string { return h.media.AbsoluteImage(r, image) }
}

// Option configures optional parts of the API.
type Option func(*options)

type options struct {
	idempotent func(http.Handler) http.Handler
	media      *media.Media
	caching    httpx.Caching
}

// WithMedia sets how image URLs are made absolute (the public URL, the
// trusted proxies). Without it they are made from each request's Host.
func WithMedia(m *media.Media) Option {
	return func(opts *options) { opts.media = m }
}

// WithCaching sets how caches in front of the node may keep answers
// (default httpx.DefaultCaching).
func WithCaching(c httpx.Caching) Option {
	return func(opts *options) { opts.caching = c }
}

// WithIdempotency makes writes sent with an Idempotency-Key header safe to
// repeat: the first response is stored in s and replayed to repeats from
// the same user, on any node.
func WithIdempotency(s idempotency.Store, o idempotency.Options) Option {
	return func(opts *options) {
		o.User = func(r *http.Request) int64 { return auth.UserID(r.Context()) }
		o.WriteError = writeError
		opts.idempotent = idempotency.Middleware(s, o)
	}
}

// New returns the API handler; its routes start with /api/.
func New(svc *conduit.Service, tokens *auth.Tokens, opts ...Option) http.Handler {
	o := options{caching: httpx.DefaultCaching()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.media == nil {
		o.media = media.New(nil, media.Options{})
	}
	h := &handler{svc: svc, tokens: tokens, media: o.media}
	mux := http.NewServeMux()

	mux.HandleFunc("POST /api/users/login", h.login)
	mux.HandleFunc("POST /api/users", h.register)
	mux.HandleFunc("GET /api/user", h.requireAuth(h.currentUser))
	mux.HandleFunc("PUT /api/user", h.requireAuth(h.updateUser))
	// Extensions of the spec: revoke this token, or every token of the user.
	mux.HandleFunc("POST /api/user/logout", h.requireAuth(h.logout))
	mux.HandleFunc("POST /api/user/logout-all", h.requireAuth(h.logoutAll))

	mux.HandleFunc("GET /api/profiles/{username}", h.profile)
	mux.HandleFunc("POST /api/profiles/{username}/follow", h.requireAuth(h.follow))
	mux.HandleFunc("DELETE /api/profiles/{username}/follow", h.requireAuth(h.unfollow))

	mux.HandleFunc("GET /api/articles", h.listArticles)
	mux.HandleFunc("GET /api/articles/feed", h.requireAuth(h.feed))
	mux.HandleFunc("POST /api/articles", h.requireAuth(h.createArticle))
	mux.HandleFunc("GET /api/articles/{slug}", h.article)
	mux.HandleFunc("PUT /api/articles/{slug}", h.requireAuth(h.updateArticle))
	mux.HandleFunc("DELETE /api/articles/{slug}", h.requireAuth(h.deleteArticle))
	mux.HandleFunc("POST /api/articles/{slug}/favorite", h.requireAuth(h.favorite))
	mux.HandleFunc("DELETE /api/articles/{slug}/favorite", h.requireAuth(h.unfavorite))

	mux.HandleFunc("GET /api/articles/{slug}/comments", h.comments)
	mux.HandleFunc("POST /api/articles/{slug}/comments", h.requireAuth(h.addComment))
	mux.HandleFunc("DELETE /api/articles/{slug}/comments/{id}", h.requireAuth(h.deleteComment))

	mux.HandleFunc("GET /api/tags", h.tags)

	// Extensions of the spec (docs/openapi-extensions.yml).
	mux.HandleFunc("GET /api/search", h.search)
	mux.HandleFunc("PUT /api/user/image", h.requireAuth(h.uploadImage))
	mux.HandleFunc("GET /api/notifications", h.requireAuth(h.notifications))
	mux.HandleFunc("POST /api/notifications/read", h.requireAuth(h.readNotifications))

	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, conduit.ErrNotFound)
	})
	// Bodies are checked inside the idempotency layer, so that a refused
	// body is a 422 that a repeat gets again.
	routes := httpx.TextBody(httpx.RecordRoute(mux))
	if o.idempotent != nil {
		routes = o.idempotent(routes) // after authentication: keys are per user
	}
	// Paths and queries are checked before anything stores them (keys).
	// Anonymous reads may be kept by shared caches; anything sent with a
	// token only by its client (see docs/stage6.md).
	personal := func(r *http.Request) bool { return r.Header.Get("Authorization") != "" }
	return httpx.Representations(o.caching.Policy(personal, conduit.KeySite))(
		cors(httpx.TextOnly(writeError)(h.authenticate(routes))))
}

// authenticate reads "Authorization: Token <jwt>" (or "Bearer <jwt>").
// A missing header is an anonymous request; a bad, expired or revoked
// token, or one whose user is gone, is a 401 even on endpoints that allow
// anonymous access, so clients learn that they must sign in again.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := presentedToken(r)
		if !ok {
			writeError(w, r, conduit.ErrUnauthenticated)
			return
		}
		c, err := h.tokens.Verify(token)
		if err != nil {
			writeError(w, r, conduit.ErrUnauthenticated)
			return
		}
		// Revocation is checked against the cached account: no query
		// while the cache holds it. A database that cannot answer is a 503.
		if _, err := h.svc.Authenticate(r.Context(), conduit.Token(c)); err != nil {
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithClaims(r.Context(), c)))
	})
}

// presentedToken returns the token of the Authorization header, or false
// when the header is not of the Token or Bearer scheme.
func presentedToken(r *http.Request) (string, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Token") && !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

func (h *handler) requireAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if auth.UserID(r.Context()) == 0 {
			writeError(w, r, conduit.ErrUnauthenticated)
			return
		}
		next(w, r)
	}
}

// cors lets browser apps on other origins call the API. Tokens travel in a
// header, never in cookies, so allowing any origin exposes nothing. The
// answer is the same for every origin ("*", not an echo of Origin), so it
// does not vary by Origin; it varies by Authorization (anonymous and
// signed-in answers differ), which every cache must know.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		httpx.AddVary(hd, "Authorization")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Requested-With, Idempotency-Key")
			hd.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// errorBody is the spec's GenericErrorModel.
type errorBody struct {
	Errors map[string][]string `json:"errors"`
}

// WriteError answers err in the spec's error shape. It is the API's
// httpx.ErrorWriter: the server and the idempotency middleware answer the
// errors they raise in front of the API with it.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, err) }

// writeError is the one place the API turns an error into a response:
// validation errors name their fields, errors of the HTTP plumbing the
// input they are about (a header, the body), everything else "body".
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpx.Status(err)
	httpx.LogError(r, status, err)
	var (
		ve conduit.ValidationError
		p  *httpx.Problem
	)
	if errors.As(err, &ve) {
		httpx.WriteJSON(w, status, errorBody{Errors: ve})
		return
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Token realm="conduit"`)
	}
	if ra := httpx.RetryAfter(err); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	field := "body"
	if errors.As(err, &p) && p.Field != "" {
		field, msg = p.Field, p.Msg
	}
	httpx.WriteJSON(w, status, errorBody{Errors: map[string][]string{field: {msg}}})
}

// pageParams reads the limit and offset of a list; an absent limit is 0,
// which the service turns into its default, and an explicit limit=0 is
// refused as the spec's minimum is 1.
//
// cursor (an extension of the spec) is the nextCursor of a previous page:
// the list continues after that page's last article (or comment), however
// deep, at the cost of a first page. It is opaque to clients.
func pageParams(r *http.Request) (limit, offset int, before int64, err error) {
	v := conduit.ValidationError{}
	limit, offset = queryInt(r, "limit", v), queryInt(r, "offset", v)
	if r.URL.Query().Has("limit") && limit == 0 && len(v["limit"]) == 0 {
		v.Add("limit", "must be at least 1")
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		var ok bool
		if before, ok = decodeCursor(c); !ok {
			v.Add("cursor", "is invalid")
		}
	}
	return limit, offset, before, v.Err()
}

// cursorPrefix versions the cursor format.
const cursorPrefix = "a1."

// encodeCursor makes the opaque cursor that continues a list below the
// id of an article or a comment (ids grow with creation time, so "below"
// is "older").
func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(id, 10)))
}

// decodeCursor reverses encodeCursor.
func decodeCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	s, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// queryInt reads an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string, v conduit.ValidationError) int {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		v.Add(name, "must be a non-negative integer")
		return 0
	}
	return n
}
