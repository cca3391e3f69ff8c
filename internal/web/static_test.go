package web

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func getWith(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Result()
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Assets are served pre-compressed in the coding asked for, as immutable,
// with one ETag per coding and 304s.
func TestStaticPrecompressed(t *testing.T) {
	t.Parallel()
	s := newSite(t, storetest.OpenSQLite(t), Options{})
	css := s.handlerAssets().byName["app.css"]
	url := s.handlerAssets().URL("app.css")
	zd, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zd.Close()
	etags := map[string]bool{}
	for _, ae := range []string{"", "gzip", "gzip, deflate, br, zstd"} {
		res := getWith(t, s.handler, url, "Accept-Encoding", ae)
		body := readAll(t, res.Body)
		enc := res.Header.Get("Content-Encoding")
		var plain []byte
		switch enc {
		case "":
			plain = body
		case "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			plain = readAll(t, zr)
		case "zstd":
			if plain, err = zd.DecodeAll(body, nil); err != nil {
				t.Fatal(err)
			}
		}
		wantEnc := map[string]string{"": "", "gzip": "gzip", "gzip, deflate, br, zstd": "zstd"}[ae]
		if res.StatusCode != 200 || enc != wantEnc || !bytes.Equal(plain, css.body) {
			t.Errorf("AE %q: %d, coding %q (want %q), body intact %v", ae, res.StatusCode, enc, wantEnc, bytes.Equal(plain, css.body))
		}
		if enc != "" && len(body) > len(css.body)/3 {
			t.Errorf("AE %q: %d bytes for %d", ae, len(body), len(css.body))
		}
		if res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || res.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("AE %q: headers %v", ae, res.Header)
		}
		etag := res.Header.Get("ETag")
		etags[etag] = true
		if again := getWith(t, s.handler, url, "Accept-Encoding", ae, "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
			t.Errorf("AE %q: If-None-Match %s got %d", ae, etag, again.StatusCode)
		}
	}
	if len(etags) != 3 {
		t.Errorf("ETags %v: want one per coding", etags)
	}
}

// With --asset-url pages link the files there, and the CSP allows it.
func TestAssetURL(t *testing.T) {
	t.Parallel()
	s := newSite(t, storetest.OpenSQLite(t), Options{AssetURL: "https://cdn.example.com/"})
	res := getWith(t, s.handler, "/login")
	body := string(readAll(t, res.Body))
	links := regexp.MustCompile(`(?:href|src)="([^"]*/static/[^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(links) < 3 {
		t.Fatalf("asset links %v", links)
	}
	for _, l := range links {
		if !strings.HasPrefix(l[1], "https://cdn.example.com/static/") {
			t.Errorf("asset linked at %s", l[1])
		}
		// The CDN fetches the same path from the site.
		path := strings.TrimPrefix(l[1], "https://cdn.example.com")
		if r := getWith(t, s.handler, path); r.StatusCode != 200 {
			t.Errorf("%s: %d from the origin", path, r.StatusCode)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, d := range []string{"script-src 'self' https://cdn.example.com;", "style-src 'self' https://cdn.example.com;"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
}

// A node serves the files of other builds from the asset store, checked
// against their fingerprints; its own are published there.
func TestAssetsOfOtherBuilds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newSite(t, db, Options{Assets: db})
		site := s.handler.(*Site)
		if err := site.PublishAssets(ctx, 30*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		own := s.handlerAssets().byName["app.css"]
		if ct, body, err := db.Asset(ctx, own.file); err != nil || !bytes.Equal(body, own.body) || ct != own.contentType {
			t.Fatalf("own asset not published: %q %v", ct, err)
		}

		// A file of another build, published by its node.
		old := []byte(strings.Repeat(".banner { color: #5cb85c } ", 100))
		oldFile := "app." + fingerprint(old) + ".css"
		if err := db.PutAsset(ctx, oldFile, "text/css; charset=utf-8", old, time.Now()); err != nil {
			t.Fatal(err)
		}
		res := getWith(t, s.handler, staticPrefix+oldFile, "Accept-Encoding", "gzip")
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatalf("%d %v: %v", res.StatusCode, res.Header, err)
		}
		if res.StatusCode != 200 || !bytes.Equal(readAll(t, zr), old) || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("other build's file: %d %v", res.StatusCode, res.Header)
		}

		// A row whose content does not match its name is not served.
		forged := "app.000000000000.css"
		if err := db.PutAsset(ctx, forged, "text/css", []byte("body{}"), time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{forged, "app.111111111111.css", "conduit.db", "app.css", "x.ABCDEF012345.css"} {
			if r := getWith(t, s.handler, staticPrefix+p); r.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d", p, r.StatusCode)
			}
		}
	})
}
