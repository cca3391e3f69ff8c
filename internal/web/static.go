package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/conduit-dev/conduit/internal/cache/ttl"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

//go:embed static
var staticFS embed.FS

// staticPrefix is where fingerprinted assets are served.
const staticPrefix = "/static/"

// asset is one static file, with its pre-compressed forms.
type asset struct {
	name        string // e.g. app.css
	file        string // e.g. app.1a2b3c4d5e6f.css
	hash        string // the fingerprint: 12 hex digits of its SHA-256
	contentType string
	body        []byte
	encoded     map[string][]byte // by coding (httpx.Zstd, httpx.Gzip); only forms smaller than body
}

// AssetStore keeps the static files of every build that has run, so that
// a node can serve the files a page of another build links to (a rolling
// deploy, a page an edge cached before a restart). Implemented by
// store.DB.
type AssetStore interface {
	PutAsset(ctx context.Context, file, contentType string, body []byte, now time.Time) error
	Asset(ctx context.Context, file string) (contentType string, body []byte, err error)
	ForgetAssets(ctx context.Context, before time.Time) (int64, error)
}

// assets are the embedded static files, addressed by content hash: a new
// build with a changed file gets a new URL, so browsers and CDNs may cache
// each URL forever. The hash depends only on the content, so every node of
// a cluster computes the same URLs.
type assets struct {
	base   string            // --asset-url without its trailing slash; "" for this host
	byName map[string]*asset // app.css -> asset
	byFile map[string]*asset // app.1a2b3c4d5e6f.css -> asset

	// Files of other builds, read from the store on demand.
	store     AssetStore
	compress  *httpx.Compressor
	foreign   *ttl.Map[*asset]
	notStored *ttl.Map[struct{}]
}

// newAssets returns the embedded files (see embeddedFiles) under base,
// with room for the files of other builds.
func newAssets(base string) (*assets, error) {
	own, err := embeddedFiles()
	if err != nil {
		return nil, err
	}
	return &assets{
		base:      strings.TrimSuffix(base, "/"),
		byName:    own.byName,
		byFile:    own.byFile,
		compress:  httpx.NewCompressor(httpx.CompressBest),
		foreign:   ttl.New[*asset](time.Hour, 256, time.Now),
		notStored: ttl.New[struct{}](10*time.Second, 1024, time.Now),
	}, nil
}

// ownFiles are this build's files, by name and by fingerprinted file name;
// read only once made.
type ownFiles struct {
	byName, byFile map[string]*asset
}

// embeddedFiles reads and compresses the embedded files once per process:
// they are few and small (a few milliseconds at the best levels), and
// doing it at start keeps one source of truth in the repository instead of
// committed .gz and .zst copies that could drift from it. Every Site of a
// process serves the same files: the tests, which make a Site per test,
// spent a quarter of their CPU time compressing them again.
var embeddedFiles = sync.OnceValues(func() (ownFiles, error) {
	own := ownFiles{byName: map[string]*asset{}, byFile: map[string]*asset{}}
	compress := httpx.NewCompressor(httpx.CompressBest)
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		ext := path.Ext(name)
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		hash := fingerprint(body)
		x := prepare(compress, strings.TrimSuffix(name, ext)+"."+hash+ext, hash, ct, body)
		x.name = name
		own.byName[name] = x
		own.byFile[x.file] = x
		return nil
	})
	return own, err
})

// fingerprint is the hash part of an asset's file name.
func fingerprint(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:6])
}

// prepare makes an asset with its compressed forms.
func prepare(compress *httpx.Compressor, file, hash, contentType string, body []byte) *asset {
	x := &asset{file: file, hash: hash, contentType: contentType, body: body, encoded: map[string][]byte{}}
	if httpx.Compressible(contentType) && len(body) >= httpx.MinCompressSize {
		for _, enc := range []string{httpx.Zstd, httpx.Gzip} {
			if z := compress.Compress(enc, body); len(z) < len(body) {
				x.encoded[enc] = z
			}
		}
	}
	return x
}

// URL returns the fingerprinted URL of an embedded file, under the asset
// base URL when one is set; it panics for a file that does not exist, which
// the boot-time template check catches.
func (a *assets) URL(name string) string {
	x, ok := a.byName[name]
	if !ok {
		panic("web: no static file " + name)
	}
	return a.base + staticPrefix + x.file
}

// Publish stores this build's files in the asset store, so that nodes of
// other builds can serve them, and forgets files no build has marked for
// keep. It runs before the node takes traffic, and then daily (a build that
// runs for weeks keeps its files).
func (a *assets) Publish(ctx context.Context, now time.Time, keep time.Duration) error {
	if a.store == nil {
		return nil
	}
	for _, x := range a.byFile {
		if err := a.store.PutAsset(ctx, x.file, x.contentType, x.body, now); err != nil {
			return fmt.Errorf("publish %s: %w", x.file, err)
		}
	}
	_, err := a.store.ForgetAssets(ctx, now.Add(-keep))
	return err
}

// assetFileRE is the shape of a fingerprinted file name; anything else is
// a 404 without asking the store.
var assetFileRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}\.[0-9a-f]{12}\.[a-z0-9]{1,8}$`)

// lookup finds a file of this build or, failing that, of another build in
// the asset store, checking that its content matches its fingerprint.
func (a *assets) lookup(ctx context.Context, file string) (*asset, error) {
	if x, ok := a.byFile[file]; ok {
		return x, nil
	}
	if a.store == nil || !assetFileRE.MatchString(file) {
		return nil, conduit.ErrNotFound
	}
	if x, ok, _ := a.foreign.Get(file); ok {
		return x, nil
	}
	if _, missing, _ := a.notStored.Get(file); missing {
		return nil, conduit.ErrNotFound
	}
	ct, body, err := a.store.Asset(ctx, file)
	if errors.Is(err, conduit.ErrNotFound) {
		a.notStored.Put(file, struct{}{}, 0)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	hash := strings.Split(file, ".")[1]
	if fingerprint(body) != hash {
		return nil, fmt.Errorf("stored asset %s does not match its fingerprint: %w", file, conduit.ErrNotFound)
	}
	x := prepare(a.compress, file, hash, ct, body)
	a.foreign.Put(file, x, 0)
	return x, nil
}

// static serves a fingerprinted asset as immutable, pre-compressed in the
// coding the client accepts (a Range request gets the file as it is).
// Unknown names are 404s.
func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	x, err := h.assets.lookup(r.Context(), r.PathValue("file"))
	if err != nil {
		if !errors.Is(err, conduit.ErrNotFound) {
			h.logger.WarnContext(r.Context(), "static file", slog.Any("error", err))
		}
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", x.contentType)
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	if len(x.encoded) > 0 {
		httpx.AddVary(hd, "Accept-Encoding")
	}
	enc := httpx.AcceptedEncoding(r)
	if z, ok := x.encoded[enc]; ok && r.Header.Get("Range") == "" {
		hd.Set("Content-Encoding", enc)
		hd.Set("ETag", `"`+x.hash+"-"+enc+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(z))
		return
	}
	hd.Set("ETag", `"`+x.hash+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(x.body))
}

// favicon serves the icon at the address browsers try by default.
func (h *handler) favicon(w http.ResponseWriter, r *http.Request) {
	x := h.assets.byName["favicon.svg"]
	w.Header().Set("Content-Type", x.contentType)
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(x.body))
}
