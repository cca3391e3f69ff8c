package storetest

import (
	"context"
	"sync/atomic"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// ListCounter is a conduit.Store that counts the article list reads
// reaching it: the cache tests tell a page served from a cache from one
// read from the database by it.
type ListCounter struct {
	conduit.Store
	lists atomic.Int64
}

func (s *ListCounter) ListArticles(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	s.lists.Add(1)
	return s.Store.ListArticles(ctx, viewerID, f)
}

// Lists is the number of list reads so far.
func (s *ListCounter) Lists() int64 { return s.lists.Load() }
