package web

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func TestFollowFillsYourFeed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		s.browser().signUp("writer").publish("Followed words", "news")
		s.browser().signUp("stranger").publish("Unfollowed words", "")
		b := s.browser().signUp("reader")

		res := b.get("/?feed=following")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, `class="nav-link active" href="/?feed=following"`, "Follow some authors")

		res = b.get("/profile/writer")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, "<h1>writer</h1>", `action="/profile/writer/follow"`, "Follow writer", "<h2>Followed words</h2>",
			`class="nav-link active" href="/profile/writer"`)
		wantNotContains(t, res, "Edit Profile Settings")

		wantRedirect(t, b.post("/profile/writer/follow", url.Values{"next": {"/profile/writer"}}), "/profile/writer")
		res = b.get("/profile/writer")
		wantContains(t, res, "Unfollow writer", `action="/profile/writer/unfollow"`)

		res = b.get("/?feed=following")
		wantContains(t, res, "<h2>Followed words</h2>")
		wantNotContains(t, res, "Unfollowed words")

		// Following oneself is refused by the service, shown as 422.
		wantStatus(t, b.post("/profile/reader/follow", nil), http.StatusUnprocessableEntity)

		wantRedirect(t, b.post("/profile/writer/unfollow", nil), "/profile/writer")
		wantNotContains(t, b.get("/?feed=following"), "Followed words")
	})
}

func TestOwnProfile(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("me")
		b.publish("My story", "")
		res := b.get("/profile/me")
		wantContains(t, res, "Edit Profile Settings", `class="nav-link active" href="/profile/me" aria-current="page"`, "<h2>My story</h2>")
		wantNotContains(t, res, "Follow me")
		wantContains(t, b.get("/profile/me/favorites"), "No favorited articles yet.")
	})
}
