package httpx

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestAcceptedEncoding(t *testing.T) {
	for _, c := range []struct{ ae, want string }{
		{"", ""},
		{"gzip", Gzip},
		{"gzip, deflate, br", Gzip},
		{"gzip, deflate, br, zstd", Zstd},
		{"zstd;q=0.5, gzip", Gzip},
		{"zstd;q=0, gzip;q=0", ""},
		{"br", ""},
		{"*", Zstd},
		{"*;q=0.1, gzip;q=0.5", Gzip},
		{"x-gzip", Gzip},
		{"GZIP ; Q=1", Gzip},
		{"gzip;q=nonsense", ""},
		{"identity", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.ae != "" {
			r.Header.Set("Accept-Encoding", c.ae)
		}
		if got := AcceptedEncoding(r); got != c.want {
			t.Errorf("Accept-Encoding %q: got %q, want %q", c.ae, got, c.want)
		}
	}
}

func decode(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	switch enc {
	case "":
		return b
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return out
	case Zstd:
		d, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		out, err := d.DecodeAll(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("unknown coding %q", enc)
	return nil
}

// serve runs h behind Representations(p) for one request.
func serve(p CachePolicy, h http.HandlerFunc, r *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	Representations(p)(h).ServeHTTP(rec, r)
	return rec.Result()
}

func bodyOf(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testPolicy = CachePolicy{
	Shared:        SharedCacheControl(time.Minute, 30*time.Second, 24*time.Hour),
	Personal:      func(r *http.Request) bool { return r.Header.Get("Authorization") != "" },
	SurrogateKeys: true,
	SiteKey:       "site",
}

// Every text response at or above the minimum size is compressed when the
// client asks, in the coding it asked for, and never when it does not.
func TestRepresentationsCompressTextWhenAsked(t *testing.T) {
	text := strings.Repeat("Conduit compresses text. ", 200)
	types := []string{"text/html; charset=utf-8", "application/json", "text/css; charset=utf-8",
		"text/javascript; charset=utf-8", "image/svg+xml", "application/atom+xml", "text/plain; charset=utf-8"}
	for _, ct := range types {
		for _, size := range []int{MinCompressSize - 1, MinCompressSize, len(text)} {
			for _, status := range []int{200, 404, 422} {
				for _, ae := range []string{"", "gzip", "gzip, deflate, br, zstd", "br"} {
					body := text[:size]
					h := func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Type", ct)
						w.WriteHeader(status)
						io.WriteString(w, body)
					}
					r := httptest.NewRequest("GET", "/x", nil)
					if ae != "" {
						r.Header.Set("Accept-Encoding", ae)
					}
					res := serve(testPolicy, h, r)
					got := bodyOf(t, res)
					enc := res.Header.Get("Content-Encoding")
					want := ""
					if size >= MinCompressSize {
						want = AcceptedEncoding(r)
					}
					name := ct + " " + strconv.Itoa(size) + "B " + strconv.Itoa(status) + " AE=" + ae
					if enc != want {
						t.Errorf("%s: Content-Encoding %q, want %q", name, enc, want)
					}
					if plain := decode(t, enc, got); string(plain) != body {
						t.Errorf("%s: body does not decode to the original", name)
					}
					if enc != "" && len(got) >= size/2 {
						t.Errorf("%s: %d bytes compressed to %d", name, size, len(got))
					}
					if res.Header.Get("Content-Length") != strconv.Itoa(len(got)) {
						t.Errorf("%s: Content-Length %q for %d bytes", name, res.Header.Get("Content-Length"), len(got))
					}
					if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
						t.Errorf("%s: Vary %q lacks Accept-Encoding", name, res.Header.Get("Vary"))
					}
				}
			}
		}
	}
}

func TestRepresentationsLeaveOtherBodiesAlone(t *testing.T) {
	big := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000)
	for _, c := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"image", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			w.Write(big)
		}},
		{"already encoded", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/css")
			w.Header().Set("Content-Encoding", Gzip)
			w.Write(big)
		}},
		{"no-transform", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Cache-Control", "no-store, no-transform")
			w.Write(big)
		}},
	} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Accept-Encoding", "gzip, zstd")
		res := serve(testPolicy, c.h, r)
		if got := bodyOf(t, res); !bytes.Equal(got, big) {
			t.Errorf("%s: body changed (Content-Encoding %q)", c.name, res.Header.Get("Content-Encoding"))
		}
	}
}

func TestRepresentationsCacheControl(t *testing.T) {
	page := func(status int, setup func(h http.Header)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			SetSurrogateKeys(w.Header(), "article-1", "user-2")
			if setup != nil {
				setup(w.Header())
			}
			w.WriteHeader(status)
			io.WriteString(w, "<p>hello</p>")
		}
	}
	for _, c := range []struct {
		name    string
		method  string
		auth    bool
		status  int
		setup   func(h http.Header)
		want    string
		keys    string // Surrogate-Key sent
		hasETag bool
	}{
		{"anonymous read", "GET", false, 200, nil, testPolicy.Shared, "article-1 user-2 site", true},
		{"anonymous HEAD", "HEAD", false, 200, nil, testPolicy.Shared, "article-1 user-2 site", true},
		{"signed-in read", "GET", true, 200, nil, PrivateRevalidate, "", true},
		{"write", "POST", false, 200, nil, NoStore, "", false},
		{"not found", "GET", false, 404, nil, NoStore, "", false},
		{"sets a cookie", "GET", false, 200, func(h http.Header) { h.Set("Set-Cookie", "a=b") }, NoStore, "", false},
		{"handler's own choice", "GET", false, 200, func(h http.Header) { h.Set("Cache-Control", "no-store") }, "no-store", "", false},
		{"handler's own public", "GET", false, 200, func(h http.Header) { h.Set("Cache-Control", "public, max-age=9") }, "public, max-age=9", "", true},
	} {
		r := httptest.NewRequest(c.method, "/x", nil)
		if c.auth {
			r.Header.Set("Authorization", "Token x")
		}
		res := serve(testPolicy, page(c.status, c.setup), r)
		if got := res.Header.Get("Cache-Control"); got != c.want {
			t.Errorf("%s: Cache-Control %q, want %q", c.name, got, c.want)
		}
		if got := res.Header.Get(SurrogateKeyHeader); got != c.keys {
			t.Errorf("%s: Surrogate-Key %q, want %q", c.name, got, c.keys)
		}
		if got := res.Header.Get("ETag") != ""; got != c.hasETag {
			t.Errorf("%s: ETag %q, want one: %v", c.name, res.Header.Get("ETag"), c.hasETag)
		}
	}
	// Without an edge that purges, the keys (internal ids) stay inside.
	p := testPolicy
	p.SurrogateKeys = false
	res := serve(p, page(200, nil), httptest.NewRequest("GET", "/x", nil))
	if k := res.Header.Get(SurrogateKeyHeader); k != "" {
		t.Errorf("Surrogate-Key %q sent with no edge configured", k)
	}
}

// A client that has the current representation gets 304 without a body,
// for public and for private responses, in each coding; one that has
// another coding's or an older version gets the body.
func TestRepresentationsNotModified(t *testing.T) {
	version := "one"
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"v":"`+version+`","pad":"`+strings.Repeat("x", 2000)+`"}`)
	}
	for _, auth := range []bool{false, true} {
		for _, ae := range []string{"", "gzip", "zstd"} {
			get := func(inm string) *http.Response {
				r := httptest.NewRequest("GET", "/api/articles/feed", nil)
				if auth {
					r.Header.Set("Authorization", "Token x")
				}
				if ae != "" {
					r.Header.Set("Accept-Encoding", ae)
				}
				if inm != "" {
					r.Header.Set("If-None-Match", inm)
				}
				return serve(testPolicy, h, r)
			}
			version = "one"
			first := get("")
			etag := first.Header.Get("ETag")
			if first.StatusCode != 200 || etag == "" || !strings.HasSuffix(etag, suffix(ae)+`"`) {
				t.Fatalf("auth=%v ae=%q: first answer %d with ETag %q", auth, ae, first.StatusCode, etag)
			}
			again := get(`"nope", ` + etag)
			if again.StatusCode != http.StatusNotModified || len(bodyOf(t, again)) != 0 {
				t.Errorf("auth=%v ae=%q: repeat with If-None-Match got %d", auth, ae, again.StatusCode)
			}
			if again.Header.Get("ETag") != etag || again.Header.Get("Cache-Control") != first.Header.Get("Cache-Control") ||
				again.Header.Get("Vary") != first.Header.Get("Vary") || again.Header.Get("Content-Encoding") != "" {
				t.Errorf("auth=%v ae=%q: 304 headers %v", auth, ae, again.Header)
			}
			if weak := get("W/" + etag); weak.StatusCode != http.StatusNotModified {
				t.Errorf("auth=%v ae=%q: weak form of the tag got %d", auth, ae, weak.StatusCode)
			}
			version = "two"
			if changed := get(etag); changed.StatusCode != 200 || changed.Header.Get("ETag") == etag {
				t.Errorf("auth=%v ae=%q: changed body answered %d with ETag %q", auth, ae, changed.StatusCode, changed.Header.Get("ETag"))
			}
		}
	}
	// Each coding is its own representation.
	version = "one"
	tags := map[string]bool{}
	for _, ae := range []string{"", "gzip", "zstd"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", ae)
		tags[serve(testPolicy, h, r).Header.Get("ETag")] = true
	}
	if len(tags) != 3 {
		t.Errorf("ETags per coding: %v", tags)
	}
}

func suffix(ae string) string {
	if ae == "" {
		return ""
	}
	return "-" + ae
}

// A HEAD answered by http.ServeContent keeps the length of the body it
// did not write.
func TestRepresentationsHeadKeepsLength(t *testing.T) {
	content := strings.Repeat("body { color: red } ", 100)
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("ETag", `"abc"`)
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(content))
	}
	res := serve(testPolicy, h, httptest.NewRequest("HEAD", "/static/app.css", nil))
	if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(content)) {
		t.Errorf("HEAD Content-Length %q, want %d", got, len(content))
	}
}
