package api_test

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"
)

// Users without a picture get the default avatar's absolute URL (the
// spec's image is a required, non-nullable string), and that URL serves an
// immutable SVG. A picture of their own is returned as set.
func TestImageIsNeverEmpty(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		alice := a.register("alice")
		bob := a.register("bob")
		var me struct{ User userDTO }
		a.do("GET", "/api/user", alice.token, nil).want(t, http.StatusOK, &me)
		def := me.User.Image
		if !strings.HasPrefix(def, a.url+"/media/default-avatar.") || !strings.HasSuffix(def, ".svg") {
			t.Fatalf("image of a user without a picture = %q, want the default avatar under %s/media/", def, a.url)
		}
		res, err := http.Get(def)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml" ||
			res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Fatalf("GET default avatar: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
		}

		// Everywhere a profile appears: profiles, article authors, comments.
		slug := a.createArticle(alice, newArticle{Title: "Pictures"}).Slug
		var prof struct{ Profile profileDTO }
		a.do("GET", "/api/profiles/"+alice.username, bob.token, nil).want(t, http.StatusOK, &prof)
		var art struct{ Article articleDTO }
		a.do("GET", "/api/articles/"+slug, "", nil).want(t, http.StatusOK, &art)
		var list articlesDTO
		a.do("GET", "/api/articles", "", nil).want(t, http.StatusOK, &list)
		var com struct{ Comment commentDTO }
		a.do("POST", "/api/articles/"+slug+"/comments", bob.token,
			map[string]any{"comment": map[string]string{"body": "hi"}}).want(t, http.StatusOK, &com)
		for what, got := range map[string]string{
			"profile": prof.Profile.Image, "article author": art.Article.Author.Image,
			"list author": list.Articles[0].Author.Image, "comment author": com.Comment.Author.Image,
		} {
			if got != def {
				t.Errorf("%s image = %q, want %q", what, got, def)
			}
		}

		// A picture of one's own comes back as set; clearing it brings the
		// default back.
		a.do("PUT", "/api/user", alice.token, map[string]any{"user": map[string]string{"image": "https://img.example/a.png"}}).
			want(t, http.StatusOK, &me)
		if me.User.Image != "https://img.example/a.png" {
			t.Errorf("own image = %q", me.User.Image)
		}
		a.do("PUT", "/api/user", alice.token, map[string]any{"user": map[string]string{"image": ""}}).want(t, http.StatusOK, &me)
		if me.User.Image != def {
			t.Errorf("cleared image = %q, want %q", me.User.Image, def)
		}
	})
}

// PUT /api/user/image takes a picture as the body and makes it the user's
// image: an absolute URL under /media/ that serves the re-encoded file.
func TestUploadImage(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("pic")
		img := image.NewNRGBA(image.Rect(0, 0, 320, 240))
		for i := range img.Pix {
			img.Pix[i] = 255
		}
		var pic bytes.Buffer
		if err := png.Encode(&pic, img); err != nil {
			t.Fatal(err)
		}
		var got struct{ User userDTO }
		a.do("PUT", "/api/user/image", u.token, pic.String()).want(t, http.StatusOK, &got)
		if !strings.HasPrefix(got.User.Image, a.url+"/media/") || !strings.HasSuffix(got.User.Image, ".jpg") || got.User.Token == "" {
			t.Fatalf("user after upload: %+v", got.User)
		}
		if p := a.profile(u.username, ""); p.Image != got.User.Image {
			t.Errorf("profile image %q, want %q", p.Image, got.User.Image)
		}
		res, err := http.Get(got.User.Image)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/jpeg" {
			t.Errorf("GET %s: %d %q", got.User.Image, res.StatusCode, res.Header.Get("Content-Type"))
		}
		a.do("PUT", "/api/user/image", u.token, "GIF89a but not really").wantErrors(t, http.StatusUnprocessableEntity, "image")
		a.do("PUT", "/api/user/image", "", pic.String()).wantErrors(t, http.StatusUnauthorized)
	})
}
