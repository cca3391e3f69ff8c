// Package web serves the Conduit site as server-rendered HTML for browsers:
// plain GET pages and POST forms that work without JavaScript. It holds no
// business rules: every use case is a call to conduit.Service, and the
// templates only display what the handlers hand them in typed page structs.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/idempotency"
	"github.com/conduit-dev/conduit/internal/media"
)

// Options tune the site to how it is deployed.
type Options struct {
	// TrustedProxies are the TLS-terminating load balancers in front of
	// the site (--trusted-proxies): from them, and only from them,
	// X-Forwarded-Proto: https is believed, so session cookies are Secure.
	TrustedProxies httpx.TrustedProxies
	// Media resolves avatars (the default one for users without) and keeps
	// uploads; nil: the default avatar only, no uploads.
	Media *media.Media
	// Forms keeps one-time form tokens (see once.go), normally the
	// database's idempotency keys; nil: forms are applied as sent.
	Forms idempotency.Store
	// Caching is how caches in front of the site may keep its pages
	// (zero: httpx.DefaultCaching).
	Caching httpx.Caching
	// AssetURL, when set (--asset-url, e.g. https://cdn.example.com), is
	// where pages link the static files: a CDN that fetches them from this
	// site's /static/. Empty: this host.
	AssetURL string
	// Assets keeps the static files of every build, so that a node serves
	// those of other builds too (rolling deploys); nil: only its own.
	Assets AssetStore
}

// handler holds what the page handlers use.
type handler struct {
	svc      *conduit.Service
	tokens   *auth.Tokens
	logger   *slog.Logger
	opts     Options
	views    *views
	assets   *assets
	markdown *markdown
	renders  *singleflight.Group // article bodies being rendered, by version
	pages    *pageCache
	// fragments renders the parts of pages that many pages share, once
	// (fragments.go).
	fragments *fragments
	buffers   buffers // what pages are rendered into (render)
	// counts marks the favorites counts of the pages the page cache
	// builds (pagecache_counts.go).
	counts countMarker
	// pageHits and pageMisses count the page cache's lookups.
	pageHits, pageMisses atomic.Uint64
	forms                idempotency.Store
}

// Site is the HTML site: the handler of every page, and the site's way of
// answering errors for the middleware the server puts in front of it.
type Site struct {
	http.Handler
	h *handler
}

// WriteError answers err with the site's error page (httpx.ErrorWriter).
func (s *Site) WriteError(w http.ResponseWriter, r *http.Request, err error) { s.h.fail(w, r, err) }

// PublishAssets stores this build's static files in Options.Assets (see
// AssetStore) and forgets those no build has published for keep. Run it
// before the node takes traffic, and again daily.
func (s *Site) PublishAssets(ctx context.Context, keep time.Duration) error {
	return s.h.assets.Publish(ctx, time.Now(), keep)
}

// New returns the HTML site. Templates and static files are embedded in the
// binary and prepared here, once; a broken template is a programming error
// caught by every test, so New panics on it as regexp.MustCompile does.
func New(svc *conduit.Service, tokens *auth.Tokens, logger *slog.Logger, opts Options) *Site {
	a, err := newAssets(opts.AssetURL)
	if err != nil {
		panic("web: " + err.Error())
	}
	a.store = opts.Assets
	if opts.Media == nil {
		opts.Media = media.New(nil, media.Options{TrustedProxies: opts.TrustedProxies})
	}
	v, err := newViews(a, opts.Media)
	if err != nil {
		panic("web: " + err.Error())
	}
	h := &handler{svc: svc, tokens: tokens, logger: logger, opts: opts, views: v, assets: a, markdown: newMarkdown(),
		renders: &singleflight.Group{}, pages: newPageCache(time.Second, maxPages), fragments: newFragments(v, maxPreviews),
		counts: newCountMarker(), forms: opts.Forms}

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(h.crossOrigin))
	caching := opts.Caching
	if caching == (httpx.Caching{}) {
		caching = httpx.DefaultCaching()
	}
	return &Site{h: h, Handler: httpx.Chain(httpx.RecordRoute(h.routes()),
		httpx.Representations(caching.Policy(personal, conduit.KeySite)),
		securityHeaders(contentSecurityPolicy(opts.AssetURL)),
		csrf.Handler,
		h.session,
		httpx.TextOnly(h.fail), // form fields are checked by the service
	)}
}

// personal reports whether a request carries one of the site's cookies (the
// session, a flash message): its pages are for that browser only. Edges
// strip every other cookie (deploy/varnish/conduit.vcl) by the same rule.
func personal(r *http.Request) bool {
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, cookiePrefix) {
			return true
		}
	}
	return false
}

// cookiePrefix starts the name of every cookie the site sets.
const cookiePrefix = "conduit_"

// crossOrigin answers a cross-site form post (CSRF) with a 403 page.
func (h *handler) crossOrigin(w http.ResponseWriter, r *http.Request) {
	h.logger.WarnContext(r.Context(), "cross-origin request refused",
		slog.String("request_id", httpx.RequestID(r.Context())), slog.String("path", r.URL.Path))
	h.renderStatus(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused. Go back, reload the page and try again.")
}

// contentSecurityPolicy allows scripts, styles and fonts from this origin
// only, and from the asset URL's origin when the static files are served
// from there (a CDN). Images may also come from http(s) URLs because
// avatars and images in articles are links chosen by users.
func contentSecurityPolicy(assetURL string) string {
	self := "'self'"
	if u, err := url.Parse(assetURL); err == nil && u.Scheme != "" && u.Host != "" {
		self += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'none'; script-src " + self + "; style-src " + self + "; img-src " + self + " https: http:; " +
		"font-src " + self + "; connect-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}

// securityHeaders sets the headers every response of the site carries.
func securityHeaders(csp string) httpx.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hd := w.Header()
			hd.Set("Content-Security-Policy", csp)
			hd.Set("X-Content-Type-Options", "nosniff")
			hd.Set("Referrer-Policy", "strict-origin-when-cross-origin")
			hd.Set("X-Frame-Options", "DENY")
			hd.Set("Cross-Origin-Opener-Policy", "same-origin")
			hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
			next.ServeHTTP(w, r)
		})
	}
}
