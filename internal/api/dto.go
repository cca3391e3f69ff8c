package api

import (
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// timeFormat is ISO 8601 in UTC with milliseconds, as the spec's examples
// and the conformance suite expect.
const timeFormat = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

type userDTO struct {
	Email    string `json:"email"`
	Token    string `json:"token"`
	Username string `json:"username"`
	Bio      string `json:"bio"`
	Image    string `json:"image"`
}

type userResponse struct {
	User userDTO `json:"user"`
}

type profileDTO struct {
	Username  string `json:"username"`
	Bio       string `json:"bio"`
	Image     string `json:"image"`
	Following bool   `json:"following"`
}

type profileResponse struct {
	Profile profileDTO `json:"profile"`
}

// imageURL turns a stored image into the URL a client gets (see
// media.AbsoluteImage): never empty, always absolute.
type imageURL func(image string) string

func toProfile(p conduit.Profile, img imageURL) profileDTO {
	return profileDTO{Username: p.Username, Bio: p.Bio, Image: img(p.Image), Following: p.Following}
}

type articleDTO struct {
	Slug           string     `json:"slug"`
	Title          string     `json:"title"`
	Description    string     `json:"description"`
	Body           *string    `json:"body,omitempty"` // absent in lists, per the spec
	TagList        []string   `json:"tagList"`
	CreatedAt      string     `json:"createdAt"`
	UpdatedAt      string     `json:"updatedAt"`
	Favorited      bool       `json:"favorited"`
	FavoritesCount int        `json:"favoritesCount"`
	Author         profileDTO `json:"author"`
}

func toArticle(a conduit.Article, withBody bool, img imageURL) articleDTO {
	dto := articleDTO{
		Slug: a.Slug, Title: a.Title, Description: a.Description, TagList: a.Tags,
		CreatedAt: formatTime(a.CreatedAt), UpdatedAt: formatTime(a.UpdatedAt),
		Favorited: a.Favorited, FavoritesCount: a.FavoritesCount, Author: toProfile(a.Author, img),
	}
	if dto.TagList == nil {
		dto.TagList = []string{}
	}
	if withBody {
		dto.Body = &a.Body
	}
	return dto
}

type articleResponse struct {
	Article articleDTO `json:"article"`
}

type articlesResponse struct {
	Articles      []articleDTO `json:"articles"`
	ArticlesCount int          `json:"articlesCount"`
	// NextCursor (an extension of the spec) is the cursor of the next
	// page: pass it back as ?cursor= to continue. Absent on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

func toArticles(p conduit.ArticlePage, img imageURL) articlesResponse {
	out := articlesResponse{Articles: make([]articleDTO, len(p.Articles)), ArticlesCount: p.Count}
	if p.Next > 0 {
		out.NextCursor = encodeCursor(p.Next)
	}
	for i, a := range p.Articles {
		out.Articles[i] = toArticle(a, false, img)
	}
	return out
}

type commentDTO struct {
	ID        int64      `json:"id"`
	CreatedAt string     `json:"createdAt"`
	UpdatedAt string     `json:"updatedAt"`
	Body      string     `json:"body"`
	Author    profileDTO `json:"author"`
}

func toComment(c conduit.Comment, img imageURL) commentDTO {
	return commentDTO{ID: c.ID, CreatedAt: formatTime(c.CreatedAt), UpdatedAt: formatTime(c.UpdatedAt),
		Body: c.Body, Author: toProfile(c.Author, img)}
}

type commentResponse struct {
	Comment commentDTO `json:"comment"`
}

type commentsResponse struct {
	Comments []commentDTO `json:"comments"`
	// CommentsCount and NextCursor are extensions of the spec, as for
	// articles: all the article's comments, and the cursor of the page of
	// older ones (absent on the last page).
	CommentsCount int    `json:"commentsCount"`
	NextCursor    string `json:"nextCursor,omitempty"`
}

func toComments(p conduit.CommentPage, img imageURL) commentsResponse {
	out := commentsResponse{Comments: make([]commentDTO, len(p.Comments)), CommentsCount: p.Count}
	if p.Next > 0 {
		out.NextCursor = encodeCursor(p.Next)
	}
	for i, c := range p.Comments {
		out.Comments[i] = toComment(c, img)
	}
	return out
}

type tagsResponse struct {
	Tags []string `json:"tags"`
}
