package api_test

import (
	"context"
	"sync/atomic"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// countingStore is a conduit.Store that counts the calls reaching the
// database, to prove that a request does a fixed number of them.
type countingStore struct {
	conduit.Store
	calls atomic.Int64
}

func (s *countingStore) n() int64 { return s.calls.Load() }
func (s *countingStore) hit()     { s.calls.Add(1) }

func (s *countingStore) CreateUser(ctx context.Context, u *conduit.User) error {
	s.hit()
	return s.Store.CreateUser(ctx, u)
}

func (s *countingStore) UserByID(ctx context.Context, id int64) (conduit.User, error) {
	s.hit()
	return s.Store.UserByID(ctx, id)
}

func (s *countingStore) UserByEmail(ctx context.Context, email string) (conduit.User, error) {
	s.hit()
	return s.Store.UserByEmail(ctx, email)
}

func (s *countingStore) UpdateUser(ctx context.Context, u *conduit.User, revokeTokens bool) error {
	s.hit()
	return s.Store.UpdateUser(ctx, u, revokeTokens)
}

func (s *countingStore) UserByUsername(ctx context.Context, username string) (conduit.User, error) {
	s.hit()
	return s.Store.UserByUsername(ctx, username)
}

func (s *countingStore) Follow(ctx context.Context, followerID, followeeID int64) error {
	s.hit()
	return s.Store.Follow(ctx, followerID, followeeID)
}

func (s *countingStore) Unfollow(ctx context.Context, followerID, followeeID int64) error {
	s.hit()
	return s.Store.Unfollow(ctx, followerID, followeeID)
}

func (s *countingStore) IsFollowing(ctx context.Context, followerID, followeeID int64) (bool, error) {
	s.hit()
	return s.Store.IsFollowing(ctx, followerID, followeeID)
}

func (s *countingStore) CreateArticle(ctx context.Context, a *conduit.Article) error {
	s.hit()
	return s.Store.CreateArticle(ctx, a)
}

func (s *countingStore) ArticleBySlug(ctx context.Context, viewerID int64, slug string) (conduit.Article, error) {
	s.hit()
	return s.Store.ArticleBySlug(ctx, viewerID, slug)
}

func (s *countingStore) UpdateArticle(ctx context.Context, a *conduit.Article) error {
	s.hit()
	return s.Store.UpdateArticle(ctx, a)
}

func (s *countingStore) DeleteArticle(ctx context.Context, id int64) error {
	s.hit()
	return s.Store.DeleteArticle(ctx, id)
}

func (s *countingStore) ListArticles(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	s.hit()
	return s.Store.ListArticles(ctx, viewerID, f)
}

func (s *countingStore) Feed(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	s.hit()
	return s.Store.Feed(ctx, viewerID, f)
}

func (s *countingStore) Favorite(ctx context.Context, userID, articleID, authorID int64) (conduit.FavoriteChange, error) {
	s.hit()
	return s.Store.Favorite(ctx, userID, articleID, authorID)
}

func (s *countingStore) Unfavorite(ctx context.Context, userID, articleID, authorID int64) (conduit.FavoriteChange, error) {
	s.hit()
	return s.Store.Unfavorite(ctx, userID, articleID, authorID)
}

func (s *countingStore) FavoritesCount(ctx context.Context, articleID int64) (int, error) {
	s.hit()
	return s.Store.FavoritesCount(ctx, articleID)
}

func (s *countingStore) IsFavorited(ctx context.Context, userID, articleID int64) (bool, error) {
	s.hit()
	return s.Store.IsFavorited(ctx, userID, articleID)
}

func (s *countingStore) CreateComment(ctx context.Context, c *conduit.Comment, max conduit.CommentLimits) error {
	s.hit()
	return s.Store.CreateComment(ctx, c, max)
}

func (s *countingStore) Comments(ctx context.Context, viewerID, articleID int64, f conduit.CommentFilter) (conduit.CommentPage, error) {
	s.hit()
	return s.Store.Comments(ctx, viewerID, articleID, f)
}

func (s *countingStore) CommentByID(ctx context.Context, articleID, id int64) (conduit.Comment, error) {
	s.hit()
	return s.Store.CommentByID(ctx, articleID, id)
}

func (s *countingStore) DeleteComment(ctx context.Context, id int64) error {
	s.hit()
	return s.Store.DeleteComment(ctx, id)
}

func (s *countingStore) Tags(ctx context.Context) ([]string, error) {
	s.hit()
	return s.Store.Tags(ctx)
}
