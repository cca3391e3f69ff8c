package media_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/media"
	"github.com/conduit-dev/conduit/internal/media/mediatest"
)

func TestDirContract(t *testing.T) {
	d, err := media.NewDir(filepath.Join(t.TempDir(), "media"))
	if err != nil {
		t.Fatal(err)
	}
	mediatest.Contract(t, d)
}

// pngWith encodes a w × h picture and adds a tEXt chunk carrying secret,
// as cameras and editors add metadata.
func pngWith(t *testing.T, w, h int, alpha uint8, secret string) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 200, A: alpha})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Insert the chunk after IHDR (8-byte signature + 25-byte IHDR chunk).
	data := append([]byte("Comment\x00"), secret...)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(append([]byte("tEXt"), data...)))
	return append(append(append([]byte{}, b[:33]...), chunk...), b[33:]...)
}

func newMedia(t *testing.T) (*media.Media, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "media")
	d, err := media.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return media.New(d, media.Options{}), dir
}

// An upload is checked by its content, cropped to a square, scaled to
// AvatarSize, encoded again without its metadata, named by its hash and
// served as immutable.
func TestSaveAvatar(t *testing.T) {
	m, dir := newMedia(t)
	ctx := t.Context()
	path, err := m.SaveAvatar(ctx, bytes.NewReader(pngWith(t, 600, 400, 255, "GPS 48.85N 2.35E")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, media.Prefix) || !strings.HasSuffix(path, ".jpg") {
		t.Fatalf("path %q: an opaque picture is stored as JPEG under %s", path, media.Prefix)
	}
	stored, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(path, media.Prefix)))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte("GPS")) {
		t.Error("metadata survived the upload")
	}
	img, err := jpeg.Decode(bytes.NewReader(stored))
	if err != nil || img.Bounds().Dx() != media.AvatarSize || img.Bounds().Dy() != media.AvatarSize {
		t.Fatalf("stored picture: %v %v", img.Bounds(), err)
	}

	// Served immutable, with its type, and the same upload gives the same name.
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/jpeg" ||
		rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || !bytes.Equal(rec.Body.Bytes(), stored) {
		t.Errorf("GET %s: %d %v", path, rec.Code, rec.Header())
	}
	again, err := m.SaveAvatar(ctx, bytes.NewReader(pngWith(t, 600, 400, 255, "another comment")))
	if err != nil || again != path {
		t.Errorf("same pixels, other metadata: %q, want %q (%v)", again, path, err)
	}

	// Transparency is kept (PNG).
	if p, err := m.SaveAvatar(ctx, bytes.NewReader(pngWith(t, 50, 80, 128, ""))); err != nil || !strings.HasSuffix(p, ".png") {
		t.Errorf("transparent picture: %q %v", p, err)
	}
}

func TestSaveAvatarRefuses(t *testing.T) {
	m, _ := newMedia(t)
	huge := pngWith(t, 10, 10, 255, "")
	// A header that claims 100000 × 100000 pixels (a decompression bomb):
	// refused from the header, before any decoding.
	binary.BigEndian.PutUint32(huge[16:], 100000)
	binary.BigEndian.PutUint32(huge[20:], 100000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	for name, body := range map[string][]byte{
		"text":         []byte("just some text, named avatar.png"),
		"html":         []byte("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
		"too large":    bytes.Repeat([]byte{0}, media.MaxAvatarBytes+1),
		"too many px":  huge,
		"truncated":    pngWith(t, 300, 300, 255, "")[:200],
		"empty upload": nil,
	} {
		_, err := m.SaveAvatar(t.Context(), bytes.NewReader(body))
		var bad *media.ImageError
		if !errors.As(err, &bad) || bad.Reason == "" {
			t.Errorf("%s: err = %v, want an ImageError", name, err)
		}
	}
}

// Only names Media gives are looked up; the default avatar is always there.
func TestServeMedia(t *testing.T) {
	m, _ := newMedia(t)
	for path, want := range map[string]int{
		m.DefaultAvatar():                            http.StatusOK,
		"/media/../../etc/passwd":                    http.StatusNotFound,
		"/media/abc.png":                             http.StatusNotFound,
		"/media/" + strings.Repeat("a", 64) + ".png": http.StatusNotFound,
	} {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://x"+path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}
