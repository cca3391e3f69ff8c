package httpx

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SurrogateKeyHeader lists, space-separated, what a publicly cacheable
// response shows (an article, a user, a list; see conduit's edge keys), so
// that an edge cache can drop every response showing something a write
// changed. Only edges read it; it is removed from responses no shared cache
// may keep.
const SurrogateKeyHeader = "Surrogate-Key"

// CachePolicy is how a surface's responses may be kept by caches.
type CachePolicy struct {
	// Shared is the Cache-Control of a successful GET or HEAD for a
	// request without credentials (see SharedCacheControl). Empty: such
	// responses are private too.
	Shared string
	// Personal reports whether a request carries credentials (a session
	// cookie, an Authorization header): its answers are for that client
	// only.
	Personal func(r *http.Request) bool
	// SurrogateKeys keeps the Surrogate-Key header of shared responses and
	// adds SiteKey to it, for an edge that purges by key; otherwise the
	// header never leaves the server (its keys name internal ids).
	SurrogateKeys bool
	SiteKey       string
}

// SharedCacheControl is the Cache-Control of a response every client gets
// alike: browsers revalidate it every time (max-age=0, cheap with its
// ETag), shared caches keep it for maxAge, may serve it up to swr late
// while they refresh it, and up to sie late while the origin fails.
func SharedCacheControl(maxAge, swr, sie time.Duration) string {
	return fmt.Sprintf("public, max-age=0, s-maxage=%d, stale-while-revalidate=%d, stale-if-error=%d",
		int(maxAge.Seconds()), int(swr.Seconds()), int(sie.Seconds()))
}

// Cache-Control values for what no shared cache may keep.
const (
	// PrivateRevalidate: only the client may keep it, and must ask again
	// each time (with the ETag: a 304 if nothing changed).
	PrivateRevalidate = "private, no-cache"
	// NoStore: nobody keeps it (credentials, errors, answers to writes).
	NoStore = "no-store"
)

// SetSurrogateKeys adds keys to h's Surrogate-Key header.
func SetSurrogateKeys(h http.Header, keys ...string) {
	if len(keys) == 0 {
		return
	}
	cur := h.Get(SurrogateKeyHeader)
	seen := map[string]bool{}
	for k := range strings.FieldsSeq(cur) {
		seen[k] = true
	}
	var b strings.Builder
	b.WriteString(cur)
	for _, k := range keys {
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
	}
	h.Set(SurrogateKeyHeader, b.String())
}

// Representations sends what the handler wrote as the representation the
// request asks for:
//
//   - Cache-Control by p when the handler chose none: Shared for a 200 to
//     a GET without credentials, PrivateRevalidate for one with them,
//     NoStore for everything else and for anything setting a cookie;
//   - compressed (zstd or gzip, see AcceptedEncoding) when the body is
//     compressible text of at least MinCompressSize bytes, with
//     Vary: Accept-Encoding on every compressible response;
//   - with a strong ETag per coding (a hash of the body, "-zstd" or
//     "-gzip" appended for a compressed one) on a 200 to a GET or HEAD
//     that may be kept, and 304 Not Modified, without the body and before
//     compressing it, when the request's If-None-Match names it.
//
// Bodies are kept in memory, as the Limiter does anyway. A handler that
// sets Content-Encoding itself (pre-compressed static files) is sent as
// it is, its own ETag checked.
func Representations(p CachePolicy) Middleware {
	c := NewCompressor(CompressFast)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := Buffer(w)
			next.ServeHTTP(rec, r)
			status := rec.Status()
			if status == 0 {
				status = http.StatusOK
			}
			h := w.Header()
			read := r.Method == http.MethodGet || r.Method == http.MethodHead
			shared := p.applyCacheControl(h, r, read, status)
			if shared && p.SurrogateKeys {
				SetSurrogateKeys(h, p.SiteKey)
			} else {
				h.Del(SurrogateKeyHeader)
			}
			body := rec.Body()
			enc := ""
			compressible := status != http.StatusNoContent && status != http.StatusNotModified &&
				status != http.StatusPartialContent && h.Get("Content-Encoding") == "" &&
				Compressible(h.Get("Content-Type")) &&
				!strings.Contains(h.Get("Cache-Control"), "no-transform")
			if compressible {
				AddVary(h, "Accept-Encoding")
				if len(body) >= MinCompressSize {
					enc = AcceptedEncoding(r)
				}
			}
			if read && status == http.StatusOK && !strings.Contains(h.Get("Cache-Control"), "no-store") {
				if h.Get("ETag") == "" {
					h.Set("ETag", strongETag(body, enc))
				}
				if NoneMatch(r, h.Get("ETag")) {
					writeNotModified(w)
					return
				}
			}
			if enc != "" {
				body = c.Compress(enc, body)
				h.Set("Content-Encoding", enc)
				h.Set("Content-Length", strconv.Itoa(len(body)))
			} else if status != http.StatusNoContent && status != http.StatusNotModified && h.Get("Content-Length") == "" {
				// (A handler's own length stays: http.ServeContent sets it
				// for a HEAD, whose body it does not write.)
				h.Set("Content-Length", strconv.Itoa(len(body)))
			}
			w.WriteHeader(status)
			_, _ = w.Write(body)
		})
	}
}

// applyCacheControl sets h's Cache-Control by the policy when the handler
// set none, and reports whether the response may be kept by shared caches.
func (p CachePolicy) applyCacheControl(h http.Header, r *http.Request, read bool, status int) bool {
	cc := h.Get("Cache-Control")
	if cc == "" {
		switch {
		case h.Get("Set-Cookie") != "" || !read || status != http.StatusOK:
			cc = NoStore
		case p.Shared != "" && (p.Personal == nil || !p.Personal(r)):
			cc = p.Shared
		default:
			cc = PrivateRevalidate
		}
		h.Set("Cache-Control", cc)
	}
	return cc == p.Shared && p.Shared != ""
}

// strongETag names a body in a coding: a hash of the identity body, with
// the coding appended, since each coding is another representation (and
// the compressors are deterministic).
func strongETag(body []byte, enc string) string {
	sum := sha256.Sum256(body)
	tag := base64.RawURLEncoding.EncodeToString(sum[:12])
	if enc != "" {
		tag += "-" + enc
	}
	return `"` + tag + `"`
}

// NoneMatch reports whether r's If-None-Match names etag ("*" names any),
// comparing weakly as RFC 9110 asks for If-None-Match.
func NoneMatch(r *http.Request, etag string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" || etag == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for tag := range strings.SplitSeq(inm, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

// writeNotModified answers 304 with the validators and caching headers
// already in w's header, without the body's own headers.
func writeNotModified(w http.ResponseWriter) {
	h := w.Header()
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding"} {
		h.Del(k)
	}
	if h.Get("ETag") != "" {
		h.Del("Last-Modified")
	}
	w.WriteHeader(http.StatusNotModified)
}

// Caching is how a node's answers may be kept by the caches in front of it
// (a CDN, Varnish, browsers).
type Caching struct {
	// SharedMaxAge is how long shared caches may keep an answer every
	// anonymous client gets alike; 0: no shared caching at all.
	SharedMaxAge time.Duration
	// StaleWhileRevalidate and StaleIfError: how late a shared cache may
	// serve such an answer while it refreshes it, and while the origin
	// fails.
	StaleWhileRevalidate, StaleIfError time.Duration
	// SurrogateKeys sends edge keys (an edge purges by them).
	SurrogateKeys bool
}

// DefaultCaching is a minute at the edge, half a minute more while it
// refreshes, a day while every node is down.
func DefaultCaching() Caching {
	return Caching{SharedMaxAge: time.Minute, StaleWhileRevalidate: 30 * time.Second, StaleIfError: 24 * time.Hour}
}

// Policy is c for a surface whose requests carry credentials when
// personal says so.
func (c Caching) Policy(personal func(*http.Request) bool, siteKey string) CachePolicy {
	p := CachePolicy{Personal: personal, SurrogateKeys: c.SurrogateKeys, SiteKey: siteKey}
	if c.SharedMaxAge > 0 {
		p.Shared = SharedCacheControl(c.SharedMaxAge, c.StaleWhileRevalidate, c.StaleIfError)
	}
	return p
}
