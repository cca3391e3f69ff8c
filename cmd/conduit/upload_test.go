package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// An avatar longer than the 1 MiB every other body is held to gets
// through the server's limiter whole and becomes the user's picture; a
// body that long elsewhere is refused.
func TestLargeAvatarUploadThroughTheServer(t *testing.T) {
	t.Parallel()
	base, logs := serveInProcess(t)
	c := newClient(t, base)
	c.register("bigpicture")

	// Noise does not compress: about 2 MB of PNG.
	img := image.NewNRGBA(image.Rect(0, 0, 720, 720))
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rnd.UintN(256))
	}
	img.Set(0, 0, color.NRGBA{A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < 3<<19 {
		t.Fatalf("test picture is only %d bytes; it must be well over 1 MiB", buf.Len())
	}

	put := func(path, ctype string, body []byte) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPut, base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Token "+c.token)
		res, err := c.http.Do(req)
		if err != nil {
			t.Fatalf("PUT %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	status, body := put("/api/user/image", "image/png", buf.Bytes())
	if status != http.StatusOK {
		t.Fatalf("upload of %d bytes = %d %s\n%s", buf.Len(), status, body, logs)
	}
	var out struct{ User struct{ Image string } }
	if err := json.Unmarshal(body, &out); err != nil || !strings.Contains(out.User.Image, "/media/") {
		t.Fatalf("upload answered %s (%v): the image is not the uploaded one", body, err)
	}
	if st, _ := c.get(strings.TrimPrefix(out.User.Image, base)); st != http.StatusOK {
		t.Errorf("GET the new picture = %d", st)
	}

	// A picture declared as JSON is refused as such, not half-read as text.
	if status, body := put("/api/user/image", "application/json", buf.Bytes()); status != http.StatusUnsupportedMediaType {
		t.Errorf("a picture sent as application/json = %d %s, want 415", status, body)
	}

	// The same length sent to another route is cut at the usual limit.
	long := `{"user":{"bio":"` + strings.Repeat("x", 3<<19) + `"}}`
	if status, body := put("/api/user", "application/json", []byte(long)); status != http.StatusUnprocessableEntity && status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 1.5 MB body to PUT /api/user = %d %s, want it refused as too large", status, body)
	}
}
