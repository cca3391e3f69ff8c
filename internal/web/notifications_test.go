package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// The notifications page lists what others did, the navigation bar counts
// the unread ones, and "Mark all as read" clears the count.
func TestNotificationsPage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		author := s.browser().signUp("author")
		slug := author.publish("Seen by many", "")
		fan := s.browser().signUp("fan")
		wantRedirect(t, fan.post("/article/"+slug+"/favorite", url.Values{}), "/article/"+slug)
		wantRedirect(t, fan.post("/profile/author/follow", url.Values{}), "/profile/author")

		home := author.get("/")
		wantStatus(t, home, http.StatusOK)
		if !strings.Contains(home.Body, `<span class="counter" aria-label="2 unread">2</span>`) {
			t.Fatalf("navigation without the unread count:\n%s", home.Body)
		}
		page := author.get("/notifications")
		wantStatus(t, page, http.StatusOK)
		for _, want := range []string{"fan followed you", "fan favorited your article", `<a href="/article/` + slug + `">Seen by many</a>`, "Mark all as read (2)"} {
			if !strings.Contains(page.Body, want) {
				t.Errorf("notifications page lacks %q", want)
			}
		}
		wantRedirect(t, author.post("/notifications/read", url.Values{}), "/notifications")
		if page := author.get("/notifications"); strings.Contains(page.Body, `class="counter"`) || strings.Contains(page.Body, "Mark all as read") {
			t.Errorf("still unread after marking read:\n%s", page.Body)
		}
		if page := fan.get("/notifications"); !strings.Contains(page.Body, "No notifications yet.") {
			t.Errorf("the fan sees notifications:\n%s", page.Body)
		}
		wantRedirect(t, s.browser().get("/notifications"), "/login?next=%2Fnotifications")
	})
}
