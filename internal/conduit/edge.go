package conduit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Edge keys name what an answer anonymous visitors share shows, so that an
// edge cache (a CDN, Varnish) in front of the site can drop every cached
// answer showing something a write changed: the HTTP surfaces tag their
// answers with the keys of what they show, and each write hands the keys
// of what it changed to the Purger after it is committed.
//
// Keys are short ASCII words ([a-z0-9-]), safe in a header and in a
// pattern. Names (tags, usernames) are hashed into them; ids are internal,
// so the surfaces send keys only to an edge, which removes them.
const (
	// KeySite is on every answer an edge may keep: purging it empties the
	// edge (a purge queue that overflowed).
	KeySite = "site"
	// KeyTags is on answers showing the popular tags.
	KeyTags = "tags"
	// keyGlobalList is on the pages of the unfiltered article list.
	keyGlobalList = "list"
)

// Purger is told, after a write is committed, the edge keys of what it
// changed. It must not block or fail the write: delivery is its own
// business (asynchronous, retried).
type Purger interface {
	Purge(keys ...string)
}

// WithPurger makes the service send edge keys to p after each write.
func WithPurger(p Purger) Option {
	return func(s *Service) { s.purger = p }
}

// purge hands keys to the purger, if there is one.
func (s *Service) purge(keys ...string) {
	if s.purger != nil && len(keys) > 0 {
		s.purger.Purge(keys...)
	}
}

// ArticleKey is on every answer showing the article: its page, and each
// list page it is on.
func ArticleKey(id int64) string { return "article-" + strconv.FormatInt(id, 10) }

// CommentsKey is on the answers showing the comments of the article with
// slug (by slug: the comments answer does not load the article).
func CommentsKey(slug string) string { return "comments-" + nameHash(slug) }

// UserKey is on every answer showing the user's profile: the profile, and
// the articles and comments it is shown as the author of.
func UserKey(id int64) string { return "user-" + strconv.FormatInt(id, 10) }

// TagKey is on the pages of the list of articles with the tag.
func TagKey(tag string) string { return "tag-" + nameHash(tag) }

// AuthorKey and FavoritesKey are on the pages of the list of a username's
// articles and favorites (by name: a list for a name nobody has yet is an
// empty page that the first article by that name must replace).
func AuthorKey(username string) string    { return "author-" + nameHash(UsernameKey(username)) }
func FavoritesKey(username string) string { return "favs-" + nameHash(UsernameKey(username)) }

// nameHash makes a name into a short key word.
func nameHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:6])
}

// ListKeys are the edge keys of a page of the list f selects: the list's
// own (for articles joining or leaving it) and those of each article and
// author shown.
func ListKeys(f ArticleFilter, page ArticlePage) []string {
	var keys []string
	if f.Tag != "" {
		keys = append(keys, TagKey(f.Tag))
	}
	if f.Author != "" {
		keys = append(keys, AuthorKey(f.Author))
	}
	if f.FavoritedBy != "" {
		keys = append(keys, FavoritesKey(f.FavoritedBy))
	}
	if len(keys) == 0 {
		keys = append(keys, keyGlobalList)
	}
	for _, a := range page.Articles {
		keys = append(keys, ArticleKey(a.ID), UserKey(a.Author.ID))
	}
	return keys
}

// ArticleKeys are the edge keys of an article's own answer.
func ArticleKeys(a Article) []string {
	return []string{ArticleKey(a.ID), UserKey(a.Author.ID)}
}

// CommentsKeys are the edge keys of an article's comments.
func CommentsKeys(slug string, comments []Comment) []string {
	keys := []string{CommentsKey(slug)}
	for _, c := range comments {
		keys = append(keys, UserKey(c.Author.ID))
	}
	return keys
}

// listMembershipKeys are the keys of the lists an article by author with
// tags is on (besides favorites lists).
func listMembershipKeys(author string, tags []string) []string {
	keys := []string{keyGlobalList, AuthorKey(author), KeyTags}
	for _, t := range tags {
		keys = append(keys, TagKey(t))
	}
	return keys
}

// favoriteKeys are the edge keys of what a favorite changed: the article's
// count wherever it is shown, and the favoriter's favorites list, named by
// a username the (cached) account gives; lists are the keys the service's
// list caches must drop, the favorites list alone: the pages they keep
// show no count (it is filled in when a page is served), while an edge
// cache keeps whole answers. Should the username read fail, both are nil:
// everything is invalidated, more misses for a moment rather than a stale
// list.
func (s *Service) favoriteKeys(ctx context.Context, viewerID, articleID int64) (edge, lists []string) {
	v, err := s.profileByID(ctx, viewerID)
	if err != nil {
		return nil, nil
	}
	favs := FavoritesKey(v.Username)
	return []string{ArticleKey(articleID), favs}, []string{favs}
}
