package web

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
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

var olderCommentsRE = regexp.MustCompile(`<a href="(/article/[^"]+\?before=\d+#comments)" rel="next">Older comments »</a>`)

// Issue 9.5: the article page showed every comment (20 MB for a thousand
// long ones). It shows a page of the newest, with a link to the older ones
// that works without JavaScript, page after page.
func TestCommentsArePaged(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n = 1050
		storetest.Discussion(t, db, n, 10, conduit.MaxComment)
		b := newSite(t, db, Options{}).browser()
		path := "/article/" + storetest.DiscussionSlug
		seen := 0
		for pages := 1; ; pages++ {
			res := b.get(path)
			wantStatus(t, res, http.StatusOK)
			if max := commentsPerPage*(conduit.MaxComment+2000) + 20_000; len(res.Body) > max {
				t.Fatalf("page %d is %d bytes, want at most %d", pages, len(res.Body), max)
			}
			got := res.count(`<div class="card comment">`)
			if got > commentsPerPage {
				t.Fatalf("page %d shows %d comments, want at most %d", pages, got, commentsPerPage)
			}
			for i := range got {
				wantContains(t, res, fmt.Sprintf(`<p class="card-text">comment %d x`, n-1-seen-i))
			}
			seen += got
			if pages > 1 {
				wantContains(t, res, `<a href="/article/`+storetest.DiscussionSlug+`#comments">« Newest comments</a>`)
			}
			more := olderCommentsRE.FindStringSubmatch(res.Body)
			if more == nil {
				break
			}
			if pages > n/commentsPerPage {
				t.Fatalf("still more comments after %d pages", pages)
			}
			path, _, _ = strings.Cut(html.UnescapeString(more[1]), "#") // a browser does not send the fragment
		}
		if seen != n {
			t.Fatalf("the pages showed %d comments, want %d", seen, n)
		}
		// A bound that is not a number shows the newest comments.
		wantContains(t, b.get("/article/"+storetest.DiscussionSlug+"?before=x"), fmt.Sprintf(`comment %d x`, n-1))
	})
}
