package api_test

import (
	"fmt"
	"net/http"
	"testing"
)

type notificationsDTO struct {
	Notifications []struct {
		ID      int64  `json:"id"`
		Kind    string `json:"kind"`
		Message string `json:"message"`
		Actor   struct {
			Username string `json:"username"`
			Bio      string `json:"bio"`
			Image    string `json:"image"`
		} `json:"actor"`
		OthersCount int `json:"othersCount"`
		Article     *struct {
			Slug  string `json:"slug"`
			Title string `json:"title"`
		} `json:"article"`
		CreatedAt string `json:"createdAt"`
		UpdatedAt string `json:"updatedAt"`
		Read      bool   `json:"read"`
	} `json:"notifications"`
	UnreadCount int    `json:"unreadCount"`
	NextCursor  string `json:"nextCursor"`
}

// GET /api/notifications and POST /api/notifications/read (an extension
// of the spec): coalesced, paged by cursor, counted unread, only for the
// signed-in user.
func TestNotificationsAPI(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		author := a.register("author")
		art := a.createArticle(author, newArticle{Title: "Noticed"})
		var fans []user
		for i := range 3 {
			f := a.register(fmt.Sprintf("fan%d", i))
			fans = append(fans, f)
			a.do("POST", "/api/articles/"+art.Slug+"/favorite", f.token, nil).want(t, http.StatusOK, nil)
		}
		a.do("POST", "/api/profiles/"+author.username+"/follow", fans[0].token, nil).want(t, http.StatusOK, nil)
		a.do("POST", "/api/articles/"+art.Slug+"/favorite", author.token, nil).want(t, http.StatusOK, nil) // own: not told

		a.do("GET", "/api/notifications", "", nil).want(t, http.StatusUnauthorized, nil)
		var got notificationsDTO
		a.do("GET", "/api/notifications?limit=1", author.token, nil).want(t, http.StatusOK, &got)
		if got.UnreadCount != 2 || len(got.Notifications) != 1 || got.NextCursor == "" {
			t.Fatalf("first page = %+v", got)
		}
		n := got.Notifications[0]
		if n.Kind != "follow" || n.Actor.Username != fans[0].username || n.Message != fans[0].username+" followed you" || n.Article != nil || n.Read {
			t.Fatalf("newest notification = %+v", n)
		}
		var next notificationsDTO
		a.do("GET", "/api/notifications?limit=1&cursor="+got.NextCursor, author.token, nil).want(t, http.StatusOK, &next)
		if len(next.Notifications) != 1 || next.NextCursor != "" {
			t.Fatalf("second page = %+v", next)
		}
		fav := next.Notifications[0]
		want := fans[2].username + " and 2 others favorited your article"
		if fav.Kind != "favorite" || fav.OthersCount != 2 || fav.Message != want || fav.Article == nil || fav.Article.Slug != art.Slug {
			t.Fatalf("favorites notification = %+v, want %q", fav, want)
		}
		a.do("GET", "/api/notifications?cursor=nope", author.token, nil).want(t, http.StatusUnprocessableEntity, nil)

		// Others see none of it.
		var theirs notificationsDTO
		a.do("GET", "/api/notifications", fans[1].token, nil).want(t, http.StatusOK, &theirs)
		if len(theirs.Notifications) != 0 || theirs.UnreadCount != 0 {
			t.Fatalf("a fan's notifications = %+v", theirs)
		}

		var after struct {
			UnreadCount int `json:"unreadCount"`
		}
		a.do("POST", "/api/notifications/read", author.token, nil).want(t, http.StatusOK, &after)
		a.do("GET", "/api/notifications", author.token, nil).want(t, http.StatusOK, &got)
		if got.UnreadCount != 0 || len(got.Notifications) != 2 || !got.Notifications[0].Read {
			t.Fatalf("after reading = %+v", got)
		}
	})
}
