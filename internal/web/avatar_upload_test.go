package web

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/media"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// uploadAvatar posts a file to the settings page's picture form.
func (b *browser) uploadAvatar(name string, body []byte) response {
	b.s.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("avatar", name)
	if err != nil {
		b.s.t.Fatal(err)
	}
	fw.Write(body)
	mw.Close()
	req := httptest.NewRequest(http.MethodPost, "/settings/avatar", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

// A picture uploaded on the settings page becomes the user's avatar,
// served by the site with immutable caching; anything else is refused
// with the reason.
func TestAvatarUpload(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		dir, err := media.NewDir(filepath.Join(t.TempDir(), "media"))
		if err != nil {
			t.Fatal(err)
		}
		s := newSite(t, db, Options{Media: media.New(dir, media.Options{})})
		alice := s.browser().signUp("alice")
		wantContains(t, alice.get("/settings"), `action="/settings/avatar" enctype="multipart/form-data"`, `<input class="form-control" type="file" id="avatar" name="avatar"`)

		img := image.NewRGBA(image.Rect(0, 0, 300, 200))
		for y := range 200 {
			for x := range 300 {
				img.Set(x, y, color.RGBA{uint8(x), uint8(y), 90, 255})
			}
		}
		var pic bytes.Buffer
		if err := png.Encode(&pic, img); err != nil {
			t.Fatal(err)
		}
		res := alice.uploadAvatar("me.png", pic.Bytes())
		wantRedirect(t, res, "/settings")
		if c := cookieOf(res, flashCookie); c == nil || c.Value != "avatar" {
			t.Errorf("flash %v", c)
		}
		u, err := s.svc.Profile(t.Context(), 0, "alice")
		if err != nil || !strings.HasPrefix(u.Image, "http://example.com/media/") || !strings.HasSuffix(u.Image, ".jpg") {
			t.Fatalf("image after upload: %q %v", u.Image, err)
		}
		path := strings.TrimPrefix(u.Image, "http://example.com")
		wantContains(t, alice.get("/profile/alice"), `src="`+u.Image+`"`)
		got := s.browser().get(path)
		wantStatus(t, got, http.StatusOK)
		if got.Header.Get("Content-Type") != "image/jpeg" || got.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: %v", path, got.Header)
		}

		// Refused: not a picture (whatever its name says), or no file.
		res = alice.uploadAvatar("evil.png", []byte("<svg onload=alert(1)>"))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		if msgs := errorMessages(res.Body); len(msgs) != 1 || !strings.Contains(msgs[0], "is not a PNG, JPEG, GIF or WebP picture") {
			t.Errorf("errors %v", msgs)
		}
		wantStatus(t, alice.post("/settings/avatar", nil), http.StatusUnprocessableEntity)
		// Anonymous: to the sign-in page.
		if res := s.browser().uploadAvatar("me.png", pic.Bytes()); res.StatusCode != http.StatusSeeOther ||
			!strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Errorf("anonymous upload: %d %q", res.StatusCode, res.Header.Get("Location"))
		}
	})
}
