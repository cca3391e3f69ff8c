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
)

// handler holds what the API handlers use.
type handler struct {
	svc    *conduit.Service
	tokens *auth.Tokens
}

// Option configures optional parts of the API.
type Option func(*options)

type options struct {
	idempotent func(http.Handler) http.Handler
}

// WithIdempotency makes writes sent with an Idempotency-Key header safe to
// repeat: the first response is stored in s and replayed to repeats from
// the same user, on any node.
func WithIdempotency(s idempotency.Store, o idempotency.Options) Option {
	return func(opts *options) {
		o.User = func(r *http.Request) int64 { return auth.UserID(r.Context()) }
		opts.idempotent = idempotency.Middleware(s, o)
	}
}

// New returns the API handler; its routes start with /api/.
func New(svc *conduit.Service, tokens *auth.Tokens, opts ...Option) http.Handler {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	h := &handler{svc: svc, tokens: tokens}
	mux := http.NewServeMux()

	mux.HandleFunc("POST /api/users/login", h.login)
	mux.HandleFunc("POST /api/users", h.register)
	mux.HandleFunc("GET /api/user", h.requireAuth(h.currentUser))
	mux.HandleFunc("PUT /api/user", h.requireAuth(h.updateUser))

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

	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, conduit.ErrNotFound)
	})
	var routes http.Handler = httpx.RecordRoute(mux)
	if o.idempotent != nil {
		routes = o.idempotent(routes) // after authentication: keys are per user
	}
	return cors(refuseNUL(h.authenticate(routes)))
}

// authenticate reads "Authorization: Token <jwt>" (or "Bearer <jwt>").
// A missing header is an anonymous request; a bad token is a 401 even on
// endpoints that allow anonymous access, so clients learn it has expired.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, _ := strings.Cut(header, " ")
		if !strings.EqualFold(scheme, "Token") && !strings.EqualFold(scheme, "Bearer") {
			writeError(w, r, conduit.ErrUnauthenticated)
			return
		}
		id, err := h.tokens.Verify(strings.TrimSpace(token))
		if err != nil {
			writeError(w, r, conduit.ErrUnauthenticated)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithUserID(r.Context(), id)))
	})
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

// refuseNUL answers requests whose path or query holds a NUL character:
// nothing can be named so, and PostgreSQL refuses NUL in text parameters,
// which would otherwise surface as a 500.
func refuseNUL(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.ContainsRune(r.URL.Path, 0) {
			writeError(w, r, conduit.ErrNotFound)
			return
		}
		for name, values := range r.URL.Query() {
			for _, v := range values {
				if strings.ContainsRune(name, 0) || strings.ContainsRune(v, 0) {
					writeError(w, r, conduit.ValidationError{"query": {"must not contain NUL characters"}})
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cors lets browser apps on other origins call the API. Tokens travel in a
// header, never in cookies, so allowing any origin exposes nothing.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Add("Vary", "Origin")
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

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpx.Status(err)
	httpx.LogError(r, status, err)
	var ve conduit.ValidationError
	if errors.As(err, &ve) {
		httpx.WriteJSON(w, status, errorBody{Errors: ve})
		return
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Token realm="conduit"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	httpx.WriteJSON(w, status, errorBody{Errors: map[string][]string{"body": {msg}}})
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
