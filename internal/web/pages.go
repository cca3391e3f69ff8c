package web

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// page is the typed data of one template in templates/pages.
type page interface {
	base() *layout
	template() string
}

// declaredPages lists every page, for the boot-time check in newViews.
func declaredPages() []page {
	return []page{
		&homePage{}, &loginPage{}, &registerPage{}, &settingsPage{},
		&editorPage{}, &articlePage{}, &profilePage{}, &errorPage{}, &searchPage{}, &notificationsPage{},
	}
}

// layout is what every page shares: the title, the current navigation item
// (shown as "nav-link active") and the signed-in user (nil: anonymous).
type layout struct {
	Title  string
	Active string // home, login, register, editor, settings, notifications, profile or search
	Viewer *viewer
	Flash  string    // a one-shot confirmation after a form (see flash.go)
	Feed   *feedLink // the Atom feed of this page's list, if any
}

func (l *layout) base() *layout { return l }

// Layout is the page's layout, for the templates: they take it once and
// read its fields from it (layout.html). A field promoted from the
// embedded layout is found by reflect's breadth-first search on every
// execution, which allocates (see commentView).
func (l *layout) Layout() *layout { return l }

// viewer is the signed-in user as the navigation shows them, with the
// number of their unread notifications (at most conduit.MaxUnreadCount).
type viewer struct {
	Username, Image string
	Unread          int
}

// UnreadLabel is the navigation's count: "99+" beyond what is counted.
func (v viewer) UnreadLabel() string {
	if v.Unread >= conduit.MaxUnreadCount {
		return strconv.Itoa(conduit.MaxUnreadCount-1) + "+"
	}
	return strconv.Itoa(v.Unread)
}

type homePage struct {
	layout
	Tab  string // "feed", "global" or "tag"
	Tag  string
	Tags []string // popular tags
	// PopularTags is Tags rendered (fragments.popularTags).
	PopularTags template.HTML
	List        articleList
}

func (*homePage) template() string { return "home" }

type loginPage struct {
	layout
	Email  string
	Next   string
	Errors []string
}

func (*loginPage) template() string { return "login" }

type registerPage struct {
	layout
	Username, Email string
	Errors          []string
}

func (*registerPage) template() string { return "register" }

type settingsPage struct {
	layout
	Image, Username, Bio, Email string
	Errors                      []string
}

func (*settingsPage) template() string { return "settings" }

type editorPage struct {
	layout
	Slug                           string // empty for a new article
	Title, Description, Body, Tags string
	Errors                         []string
}

func (*editorPage) template() string { return "editor" }

type articlePage struct {
	layout
	Article  conduit.Article
	BodyHTML template.HTML // rendered and sanitized Markdown
	IsAuthor bool          // shows Edit and Delete; the service decides (ArticleForEdit)
	// Meta is the article-meta partial (author, date, buttons) rendered
	// once for the two places the page shows it (fragments.articleMeta);
	// empty for the author, whose Delete forms each get a one-time token
	// of their own.
	Meta template.HTML
	// hole stands for the favorites count in a meta rendered to be kept.
	hole     template.HTML
	Comments []commentView // a page of them, newest first
	// CommentsCount is all the article's comments; MoreComments links to
	// the page of older ones ("" on the last page); OlderComments is set
	// on such a page, which links back to the newest.
	CommentsCount int
	MoreComments  string
	OlderComments bool
	CommentBody   string // kept after a rejected comment
	Errors        []string
	Here          string // this page's path, where forms come back to
}

func (*articlePage) template() string { return "article" }

// FavoriteButton is the article's favorite button in its meta.
func (p *articlePage) FavoriteButton() favoriteButton {
	return favoriteButton{Article: p.Article, Next: p.Here, Long: true, hole: p.hole}
}

// commentView is a comment as the article page shows it. Its fields are
// its own rather than an embedded conduit.Comment: text/template looks each
// field up by name on every execution, and a name promoted from an
// embedded struct is found by reflect's breadth-first search, which
// allocates (BenchmarkRoutes, page article: see docs/performance.md).
type commentView struct {
	ID        int64
	Body      string
	CreatedAt time.Time
	Author    conduit.Profile
	CanDelete bool // shows the delete button; the service decides (DeleteComment)
}

type profilePage struct {
	layout
	Profile   conduit.Profile
	IsSelf    bool // settings link instead of Follow; the service refuses following oneself
	Favorites bool // the "Favorited Articles" tab
	Here      string
	List      articleList
}

func (*profilePage) template() string { return "profile" }

type searchPage struct {
	layout
	Query  string
	Errors []string
	List   articleList
	Users  []conduit.Profile // whose names start with the query
	Tags   []string          // likewise
}

func (*searchPage) template() string { return "search" }

type errorPage struct {
	layout
	Status  int
	Heading string
	Message string
}

func (*errorPage) template() string { return "error" }

// articleList is a page of article previews with its pagination.
type articleList struct {
	Articles []conduit.Article
	Empty    string // what to say when there are none
	Here     string // the list's URL, where favorite buttons come back to
	Pages    []pageLink
	Missing  string // set for a page past the end of the list
	// counts marks the favorites counts when the page is built to be
	// kept ("": shown as numbers; see pagecache_counts.go).
	counts countMarker
	// fragments renders the previews of Articles (fragments.go).
	fragments *fragments
}

// Previews is the HTML of the previews of the list's articles.
func (l articleList) Previews() (template.HTML, error) { return l.fragments.articles(l) }

// button is the favorite button of the preview of a: it comes back to
// the preview in this list.
func (l articleList) button(a conduit.Article) favoriteButton {
	return favoriteButton{Article: a, Next: l.Here + "#" + previewID(a.Slug), counts: l.counts}
}

// pageLink is one entry of the pagination.
type pageLink struct {
	Label   string
	URL     string
	Current bool
	Far     bool // hidden on narrow screens
}

// perPage is how many previews a list shows.
const perPage = 10

// pageNumber reads the 1-based ?page= parameter; anything else is page 1.
func pageNumber(q url.Values) int {
	n, err := strconv.Atoi(q.Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, conduit.MaxOffset/perPage)
}

// pagination links a window of pages around the current one, plus the
// first and last, so that a list of a million articles stays short. Past
// the last page (an old link, a list that shrank) it links back to the
// last page and the pages before it. Links further than one page from the
// current one are marked Far in lists of more than seven pages: narrow
// screens hide them (app.css), leaving "« Previous 1 … 4 [5] 6 … 9 Next »".
func pagination(base url.URL, current, total int) []pageLink {
	last := max(1, (total+perPage-1)/perPage)
	if last == 1 && current <= 1 {
		return nil
	}
	center := min(current, last)
	link := func(n int, label string) pageLink {
		q := base.Query()
		if n == 1 {
			q.Del("page")
		} else {
			q.Set("page", strconv.Itoa(n))
		}
		u := base
		u.RawQuery = q.Encode()
		far := last > 7 && label == "" && n != 1 && n != last && (n < center-1 || n > center+1)
		if label == "" {
			label = strconv.Itoa(n)
		}
		return pageLink{Label: label, URL: u.RequestURI(), Current: n == current, Far: far}
	}
	var out []pageLink
	if current > 1 {
		out = append(out, link(min(current-1, last), "« Previous"))
	}
	from, to := max(1, center-3), min(last, center+3)
	if from > 1 {
		out = append(out, link(1, ""))
		if from > 2 {
			out = append(out, pageLink{Label: "…"})
		}
	}
	for n := from; n <= to; n++ {
		out = append(out, link(n, ""))
	}
	if to < last {
		if to < last-1 {
			out = append(out, pageLink{Label: "…"})
		}
		out = append(out, link(last, ""))
	}
	if current < last {
		out = append(out, link(current+1, "Next »"))
	}
	return out
}

// fill puts one page (number n) of a list into l and returns the status to
// answer with: a page past the end is a 404 (there is nothing at that
// address, and search engines should not keep it) that still shows the
// pager, with its last pages and a way back, and says why it is empty.
func (l *articleList) fill(r *http.Request, n int, page conduit.ArticlePage, f *fragments) int {
	u := r.URL
	l.counts = markerFor(r.Context())
	l.fragments = f
	l.Articles = page.Articles
	l.Here = u.RequestURI()
	l.Pages = pagination(*u, n, page.Count)
	if n > 1 && len(page.Articles) == 0 {
		last := max(1, (page.Count+perPage-1)/perPage)
		l.Missing = fmt.Sprintf("There is no page %d here: this list has %d %s.", n, last, plural(last, "page", "pages"))
		return http.StatusNotFound
	}
	return http.StatusOK
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// favoriteButton is the data of the favorite-button partial.
type favoriteButton struct {
	Article conduit.Article
	Next    string // where the form comes back to
	Long    bool   // "Favorite Article (n)" rather than just the count
	counts  countMarker
	// hole stands for the count in a preview rendered to be kept
	// (fragments.go).
	hole template.HTML
}

// Count is the article's favorites count as the button shows it: a mark
// in a page being built to be kept, which is served with the count of the
// moment filled in (pagecache_counts.go).
func (b favoriteButton) Count() template.HTML {
	switch {
	case b.hole != "":
		return b.hole
	case b.counts != "":
		return b.counts.mark(b.Article.ID, b.Article.FavoritesCount)
	}
	return template.HTML(strconv.Itoa(b.Article.FavoritesCount))
}

// followButton is the data of the follow-button partial.
type followButton struct {
	Profile conduit.Profile
	Next    string
}
