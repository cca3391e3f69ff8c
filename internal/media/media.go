// Package media serves the images of Conduit under /media/: the built-in
// default avatar and the avatars people upload. Every file is named by the
// hash of its content, so a URL never changes meaning and is served as
// immutable; browsers and CDNs may keep it forever.
package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/httpx"
)

// Prefix is where media are served.
const Prefix = "/media/"

//go:embed default-avatar.svg
var defaultAvatar []byte

// ErrNotFound is returned by a Store for a name it does not hold.
var ErrNotFound = errors.New("media: not found")

// Store keeps uploaded files by name. Names are content hashes with an
// extension, so a Put of an existing name writes the same bytes again.
type Store interface {
	Put(ctx context.Context, name, contentType string, data []byte) error
	Get(ctx context.Context, name string) (data []byte, contentType string, err error)
}

// Options configure Media.
type Options struct {
	// PublicURL (--public-url), if set, is the scheme and host clients
	// reach the site at, e.g. https://conduit.example; absolute URLs are
	// made with it. Empty: from the request (its Host, and https when it
	// came over TLS or through a trusted proxy that says so).
	PublicURL string
	// TrustedProxies are believed about X-Forwarded-Proto.
	TrustedProxies httpx.TrustedProxies
}

// Media resolves image URLs and serves the files.
type Media struct {
	store       Store // nil: no uploads, only the default avatar
	opts        Options
	defaultName string // default-avatar.<hash>.svg
}

// New returns Media over store (nil: uploads are off).
func New(store Store, opts Options) *Media {
	opts.PublicURL = strings.TrimSuffix(opts.PublicURL, "/")
	return &Media{store: store, opts: opts, defaultName: "default-avatar." + hashOf(defaultAvatar)[:12] + ".svg"}
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// DefaultAvatar is the path of the picture shown for users without one.
func (m *Media) DefaultAvatar() string { return Prefix + m.defaultName }

// Image is what the site shows for a user's stored image: the default
// avatar for none, the stored URL (or our own /media/ path) otherwise.
func (m *Media) Image(image string) string {
	if image == "" {
		return m.DefaultAvatar()
	}
	return image
}

// AbsoluteImage is what API clients get for a stored image: always an
// absolute URL, so that an app on another origin can draw it. The spec's
// image is a required string (not nullable), so users without a picture
// get the default avatar's URL rather than "".
func (m *Media) AbsoluteImage(r *http.Request, image string) string {
	image = m.Image(image)
	if strings.HasPrefix(image, Prefix) {
		return m.BaseURL(r) + image
	}
	return image
}

// BaseURL is the scheme and host of the site as the client reached it.
func (m *Media) BaseURL(r *http.Request) string {
	if m.opts.PublicURL != "" {
		return m.opts.PublicURL
	}
	scheme := "http"
	if r.TLS != nil || (m.opts.TrustedProxies.IsProxy(r) &&
		strings.EqualFold(strings.TrimSpace(firstValue(r.Header.Get("X-Forwarded-Proto"))), "https")) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func firstValue(s string) string {
	v, _, _ := strings.Cut(s, ",")
	return v
}

// ServeHTTP serves GET /media/{name} as immutable.
func (m *Media) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	var (
		data []byte
		ct   string
		err  error
	)
	switch {
	case name == m.defaultName:
		data, ct = defaultAvatar, "image/svg+xml"
	case m.store == nil || !validName(name):
		err = ErrNotFound
	default:
		data, ct, err = m.store.Get(r.Context(), name)
	}
	if errors.Is(err, ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		httpx.LogError(r, http.StatusServiceUnavailable, err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "media store unavailable", http.StatusServiceUnavailable)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", ct)
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("X-Content-Type-Options", "nosniff")
	// An SVG opened on its own is a document: no scripts in it may run.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	hd.Set("ETag", `"`+strings.TrimSuffix(name, path.Ext(name))+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// validName accepts the names Media gives files: a hex hash and one of
// the extensions it writes. Anything else (paths, dots) never reaches a
// Store.
func validName(name string) bool {
	base, ext, ok := strings.Cut(name, ".")
	if !ok || len(base) != 64 || (ext != "png" && ext != "jpg") {
		return false
	}
	for _, c := range base {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
