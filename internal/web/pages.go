package web

import (
	"html/template"
	"net/url"
	"strconv"

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
		&editorPage{}, &articlePage{}, &profilePage{}, &errorPage{},
	}
}

// layout is what every page shares: the title, the current navigation item
// (shown as "nav-link active") and the signed-in user (nil: anonymous).
type layout struct {
	Title  string
	Active string // home, login, register, editor, settings or profile
	Viewer *viewer
}

func (l *layout) base() *layout { return l }

// viewer is the signed-in user as the navigation shows them.
type viewer struct {
	Username, Image string
}

type homePage struct {
	layout
	Tab  string // "feed", "global" or "tag"
	Tag  string
	Tags []string // popular tags
	List articleList
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

type commentView struct {
	conduit.Comment
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
}

// pageLink is one entry of the pagination.
type pageLink struct {
	Label   string
	URL     string
	Current bool
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
// first and last, so that a list of a million articles stays short.
func pagination(base url.URL, current, total int) []pageLink {
	last := (total + perPage - 1) / perPage
	if last <= 1 {
		return nil
	}
	link := func(n int, label string) pageLink {
		q := base.Query()
		if n == 1 {
			q.Del("page")
		} else {
			q.Set("page", strconv.Itoa(n))
		}
		u := base
		u.RawQuery = q.Encode()
		if label == "" {
			label = strconv.Itoa(n)
		}
		return pageLink{Label: label, URL: u.RequestURI(), Current: n == current}
	}
	var out []pageLink
	if current > 1 {
		out = append(out, link(current-1, "« Previous"))
	}
	from, to := max(1, current-3), min(last, current+3)
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

// favoriteButton is the data of the favorite-button partial.
type favoriteButton struct {
	Article conduit.Article
	Next    string // where the form comes back to
	Long    bool   // "Favorite Article (n)" rather than just the count
}

// followButton is the data of the follow-button partial.
type followButton struct {
	Profile conduit.Profile
	Next    string
}
