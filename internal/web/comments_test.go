package web

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

var deleteCommentRE = regexp.MustCompile(`action="(/article/[^"]+/comments/\d+/delete)"`)

func TestComments(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		author := s.browser().signUp("author")
		slug := author.publish("Discuss", "")
		b := s.browser().signUp("reader")

		res := b.get("/article/" + slug)
		wantContains(t, res, `name="body" placeholder="Write a comment..."`, ">Post Comment</button>")
		wantContains(t, s.browser().get("/article/"+slug), "to add comments on this article")

		res = b.post("/article/"+slug+"/comments", url.Values{"body": {"   "}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantContains(t, res, "<h1>Discuss</h1>", "body can&#39;t be blank")

		res = b.post("/article/"+slug+"/comments", url.Values{"body": {"First! <script>alert(1)</script>"}})
		wantRedirect(t, res, "/article/"+slug+"#comments")
		res = b.get("/article/" + slug)
		wantContains(t, res, `<p class="card-text">First! &lt;script&gt;alert(1)&lt;/script&gt;</p>`, `class="comment-author-img" alt=""> reader</a>`)
		del := deleteCommentRE.FindStringSubmatch(res.Body)
		if del == nil {
			t.Fatal("no delete button for own comment")
		}

		// Others see no delete button and may not delete.
		wantNotContains(t, author.get("/article/"+slug), "/delete\" class=\"inline-form mod-options\"")
		wantStatus(t, author.post(del[1], nil), http.StatusForbidden)
		wantStatus(t, b.post("/article/"+slug+"/comments/abc/delete", nil), http.StatusNotFound)
		wantStatus(t, b.post("/article/"+slug+"/comments/999999/delete", nil), http.StatusNotFound)

		wantRedirect(t, b.post(del[1], nil), "/article/"+slug+"#comments")
		wantNotContains(t, b.get("/article/"+slug), "First!")
	})
}
