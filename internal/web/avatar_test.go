package web

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

var defaultAvatarRE = regexp.MustCompile(`src="(/media/default-avatar\.[0-9a-f]{12}\.svg)"`)

// Users without a picture are drawn with the default avatar, which the
// site serves as an immutable SVG.
func TestDefaultAvatarOnPages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		alice := s.browser().signUp("alice")
		slug := alice.publish("Faces", "")
		for _, p := range []string{"/", "/article/" + slug, "/profile/alice"} {
			m := defaultAvatarRE.FindStringSubmatch(alice.get(p).Body)
			if m == nil {
				t.Fatalf("%s: no default avatar", p)
			}
			res := alice.get(m[1])
			wantStatus(t, res, http.StatusOK)
			if res.Header.Get("Content-Type") != "image/svg+xml" || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
				t.Errorf("%s: %q %q", m[1], res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
			}
		}
	})
}
