package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

// staticPrefix is where fingerprinted assets are served.
const staticPrefix = "/static/"

// asset is one embedded static file.
type asset struct {
	name        string // e.g. app.css
	url         string // e.g. /static/app.1a2b3c4d5e6f.css
	etag        string
	contentType string
	body        []byte
}

// assets are the embedded static files, addressed by content hash: a new
// build with a changed file gets a new URL, so browsers and CDNs may cache
// each URL forever. The hash depends only on the content, so every node of
// a cluster computes the same URLs.
type assets struct {
	byName map[string]*asset // app.css -> asset
	byFile map[string]*asset // app.1a2b3c4d5e6f.css -> asset
}

func newAssets() (*assets, error) {
	a := &assets{byName: map[string]*asset{}, byFile: map[string]*asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:6])
		name := strings.TrimPrefix(p, "static/")
		ext := path.Ext(name)
		file := strings.TrimSuffix(name, ext) + "." + hash + ext
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		x := &asset{name: name, url: staticPrefix + file, etag: `"` + hash + `"`, contentType: ct, body: body}
		a.byName[name] = x
		a.byFile[file] = x
		return nil
	})
	return a, err
}

// URL returns the fingerprinted URL of an embedded file; it panics for a
// file that does not exist, which the boot-time template check catches.
func (a *assets) URL(name string) string {
	x, ok := a.byName[name]
	if !ok {
		panic("web: no static file " + name)
	}
	return x.url
}

// static serves a fingerprinted asset as immutable. Unknown names and stale
// hashes are 404s.
func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	x, ok := h.assets.byFile[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", x.contentType)
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("ETag", x.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(x.body))
}

// favicon serves the icon at the address browsers try by default.
func (h *handler) favicon(w http.ResponseWriter, r *http.Request) {
	x := h.assets.byName["favicon.svg"]
	w.Header().Set("Content-Type", x.contentType)
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(x.body))
}
