// Package s3test runs the media store contract against media.S3 talking to
// a real S3 server over HTTP: gofakes3 (github.com/johannesboyne/gofakes3),
// an S3 implementation in Go, in this process with its in-memory backend.
// It is a module of its own so that the fake server stays out of
// Conduit's go.mod; run it with `cd internal/media/s3test && go test ./...`.
// With CONDUIT_TEST_S3_URL set (s3://KEY:SECRET@host:port/bucket?tls=false)
// it runs against that server too (MinIO, SeaweedFS, AWS).
package s3test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/conduit-dev/conduit/internal/media"
	"github.com/conduit-dev/conduit/internal/media/mediatest"
)

// s3URLs are the servers to test: the in-process one, and one from the
// environment if given.
func s3URLs(t *testing.T) map[string]string {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	urls := map[string]string{"gofakes3": "s3://key:secret@" + strings.TrimPrefix(srv.URL, "http://") + "/conduit-media?tls=false&region=us-east-1"}
	if u := os.Getenv("CONDUIT_TEST_S3_URL"); u != "" {
		urls["env"] = u
	}
	return urls
}

func TestS3Contract(t *testing.T) {
	for name, u := range s3URLs(t) {
		t.Run(name, func(t *testing.T) {
			s, err := media.NewS3(t.Context(), u) // creates the bucket
			if err != nil {
				t.Fatal(err)
			}
			mediatest.Contract(t, s)
		})
	}
}

// An avatar saved through S3 is served by Conduit from the bucket.
func TestAvatarThroughS3(t *testing.T) {
	for name, u := range s3URLs(t) {
		t.Run(name, func(t *testing.T) {
			s, err := media.NewS3(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			m := media.New(s, media.Options{})
			img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
			for i := range img.Pix {
				img.Pix[i] = 200
			}
			img.Set(1, 1, color.NRGBA{A: 255})
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			path, err := m.SaveAvatar(t.Context(), &buf)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || rec.Body.Len() == 0 {
				t.Fatalf("GET %s: %d %v", path, rec.Code, rec.Header())
			}
		})
	}
}

func TestBadMediaURL(t *testing.T) {
	for _, u := range []string{"http://h/b", "s3://k:s@h", "s3://k:s@h/a/b", "s3:///bucket"} {
		if _, err := media.NewS3(t.Context(), u); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
