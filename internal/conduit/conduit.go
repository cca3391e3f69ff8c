// Package conduit is the domain of the Conduit blogging platform: its types,
// its errors and its use cases (Service). It knows nothing of HTTP or SQL; the
// storage, cache and password hashing it needs are interfaces declared here and
// plugged in by cmd/conduit.
package conduit

import (
	"context"
	"time"
)

// User is a registered account. PasswordHash never leaves the server (nor
// goes into a cache).
type User struct {
	ID           int64
	Username     string
	Email        string
	PasswordHash string `json:"-"`
	Bio          string
	Image        string
	// TokenGen is the generation of the user's sign-in tokens: only tokens
	// issued at the current one are accepted (see Service.Authenticate).
	TokenGen  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Profile is the public view of a user, as seen by a viewer. ID is internal
// and never shown to clients.
type Profile struct {
	ID        int64
	Username  string
	Bio       string
	Image     string
	Following bool
}

// Article is a blog post with its author as seen by the viewer who asked.
type Article struct {
	ID             int64
	Slug           string
	Title          string
	Description    string
	Body           string
	Tags           []string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FavoritesCount int
	Favorited      bool
	Author         Profile
	// BodyHTML is Body rendered for the site (sanitized HTML) by the
	// renderer generation BodyHTMLVersion; version 0 means not rendered
	// yet. The site renders a body on its first view and stores the result
	// (SaveArticleHTML), so each version of an article is rendered once.
	BodyHTML        string `json:",omitempty"`
	BodyHTMLVersion int    `json:",omitempty"`
}

// Comment is a comment on an article.
type Comment struct {
	ID        int64
	ArticleID int64
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
	Author    Profile
}

// CommentFilter selects a page of an article's comments, newest first.
type CommentFilter struct {
	Limit int
	// Before, if not 0, is a keyset bound: only comments with a smaller id
	// (older ones) are listed. It is the Next of the page before.
	Before int64
}

// CommentPage is one page of an article's comments, newest first.
type CommentPage struct {
	Comments []Comment
	Count    int   // all the article's comments, whatever the page
	Next     int64 // the Before of the next page, or 0 when this page is the last
}

// CommentLimits bound the comments of one article; a Store refuses a
// comment past them with a *LimitError.
type CommentLimits struct {
	PerArticle int // comments on one article
	PerAuthor  int // comments by one author on one article
}

// FavoriteChange is what a favorite or an unfavorite answers with.
type FavoriteChange struct {
	Count         int  // the article's favorites after the change
	FollowsAuthor bool // whether the user follows the article's author
}

// ArticleFilter selects a page of articles. Empty strings match everything.
type ArticleFilter struct {
	Tag         string
	Author      string // username
	FavoritedBy string // username
	Limit       int
	Offset      int
	// Before, if not 0, is a keyset bound: only articles with a smaller id
	// (older ones: ids grow with creation time) are listed. It is the Next of
	// the page before, so deep pages cost what the first one does.
	Before int64
}

// ArticlePage is one page of a list and the total number of matching articles.
type ArticlePage struct {
	Articles []Article
	Count    int // all the articles of the list, whatever the page
	// Next is the Before of the next page, or 0 when this page is the last.
	Next int64
}

// Store is the persistence the domain needs. Implementations map their
// driver's errors to ErrNotFound and *DuplicateError. viewerID 0 means an
// anonymous viewer: Following and Favorited are then false.
type Store interface {
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id int64) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	// UpdateUser writes u's fields and sets u.TokenGen to the stored
	// generation, which it first increases when revokeTokens is set.
	UpdateUser(ctx context.Context, u *User, revokeTokens bool) error

	// RevokeTokens increases the user's token generation, revoking every
	// token issued before.
	RevokeTokens(ctx context.Context, userID int64) error
	// RevokeToken revokes one token until it expires.
	RevokeToken(ctx context.Context, userID int64, tokenID string, expires time.Time) error
	// RevokedTokens lists the ids of the user's tokens revoked one by one
	// that have not expired by now.
	RevokedTokens(ctx context.Context, userID int64, now time.Time) ([]string, error)
	// UsersByID returns those of ids that exist, and for each the ids of
	// its tokens revoked one by one that have not expired by now (as
	// UserByID and RevokedTokens for each, in one statement).
	UsersByID(ctx context.Context, ids []int64, now time.Time) (users map[int64]User, revoked map[int64][]string, err error)
	// PurgeRevokedTokens forgets revocations of tokens expired by now.
	PurgeRevokedTokens(ctx context.Context, now time.Time) (int64, error)

	UserByUsername(ctx context.Context, username string) (User, error)
	Follow(ctx context.Context, followerID, followeeID int64) error
	Unfollow(ctx context.Context, followerID, followeeID int64) error
	IsFollowing(ctx context.Context, followerID, followeeID int64) (bool, error)

	CreateArticle(ctx context.Context, a *Article) error
	ArticleBySlug(ctx context.Context, viewerID int64, slug string) (Article, error)
	// CurrentSlug returns the slug of the article that has or had slug
	// (slugs change with titles; old ones keep naming their article).
	CurrentSlug(ctx context.Context, slug string) (string, error)
	// UpdateArticle writes a's editable fields and forgets the stored
	// rendering of its body (SetArticleHTML).
	UpdateArticle(ctx context.Context, a *Article) error
	DeleteArticle(ctx context.Context, id int64) error
	// FavoritesCount returns how many users favorited the article.
	FavoritesCount(ctx context.Context, articleID int64) (int, error)
	// FavoritesCounts returns the counts of those of ids that exist, in
	// one statement.
	FavoritesCounts(ctx context.Context, ids []int64) (map[int64]int, error)
	// SetArticleHTML stores html as the rendering of body by renderer
	// generation version, unless the article's body is no longer body or
	// it holds a rendering of a generation as new or newer.
	SetArticleHTML(ctx context.Context, id int64, body, html string, version int) error
	ListArticles(ctx context.Context, viewerID int64, f ArticleFilter) (ArticlePage, error)
	Feed(ctx context.Context, viewerID int64, f ArticleFilter) (ArticlePage, error) // f.Limit, Offset and Before

	// Favorite and Unfavorite are idempotent and return the new count
	// and, read in the same statement, whether userID follows authorID
	// (the answer's author flag: no read of its own before the write).
	Favorite(ctx context.Context, userID, articleID, authorID int64) (FavoriteChange, error)
	Unfavorite(ctx context.Context, userID, articleID, authorID int64) (FavoriteChange, error)
	IsFavorited(ctx context.Context, userID, articleID int64) (bool, error)
	// ProfilesByID returns the profiles (without Following) of those of
	// ids that exist.
	ProfilesByID(ctx context.Context, ids []int64) (map[int64]Profile, error)
	// ViewerMarks reports which of articleIDs userID has favorited and
	// which of authorIDs userID follows.
	ViewerMarks(ctx context.Context, userID int64, articleIDs, authorIDs []int64) (favorited, following map[int64]bool, err error)

	// CreateComment refuses a comment past max (*LimitError), deciding
	// inside the write so that concurrent comments cannot pass the bounds.
	CreateComment(ctx context.Context, c *Comment, max CommentLimits) error
	Comments(ctx context.Context, viewerID, articleID int64, f CommentFilter) (CommentPage, error)
	CommentByID(ctx context.Context, articleID, id int64) (Comment, error)
	DeleteComment(ctx context.Context, id int64) error

	Tags(ctx context.Context) ([]string, error)

	// SearchArticles ranks the articles having all of q.Terms among the
	// newest SearchWindow such articles; Count is at most SearchWindow.
	SearchArticles(ctx context.Context, viewerID int64, q SearchQuery) (ArticlePage, error)
	// UsersByPrefix and TagsByPrefix list names that start with prefix:
	// users case-insensitively in name order, tags (case-sensitive, as
	// stored) most used first.
	UsersByPrefix(ctx context.Context, viewerID int64, prefix string, limit int) ([]Profile, error)
	TagsByPrefix(ctx context.Context, prefix string, limit int) ([]string, error)
	// Notifications lists a user's notifications, newest activity first,
	// after the cursor (zero: from the newest), at most limit.
	Notifications(ctx context.Context, userID int64, limit int, after NotificationCursor) ([]Notification, error)
	// UnreadNotifications counts unread notifications up to max.
	UnreadNotifications(ctx context.Context, userID int64, max int) (int, error)
	MarkNotificationsRead(ctx context.Context, userID int64, now time.Time) error

	Ping(ctx context.Context) error
	Close() error
}

// Cache holds encoded values for a while. Misses are normal; a cache that is
// down behaves like one that always misses.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration)
	Delete(ctx context.Context, keys ...string)
}

// PasswordHasher hashes and checks passwords with a slow KDF.
type PasswordHasher interface {
	Hash(password string) (string, error)
	Check(hash, password string) bool
}
