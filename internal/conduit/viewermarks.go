package conduit

import "context"

// A signed-in viewer's list differs from an anonymous visitor's only in
// its marks: whether the viewer favorited each article and follows each
// author. So a signed-in viewer of a first page gets the anonymous page
// the list caches keep (as fresh as for anyone: see cachedList) with the
// viewer's marks read in one statement of primary-key probes, instead of
// the whole page query with the marks in it: in the benchmark's mix 30% of
// the API's list reads are signed in, and they were most of the list
// route's database time (docs/performance.md).

// withViewerMarks returns page as viewerID sees it: a copy (page may be
// the one a cache keeps) with Favorited and Author.Following set.
func (s *Service) withViewerMarks(ctx context.Context, viewerID int64, page ArticlePage) (ArticlePage, error) {
	articleIDs := make([]int64, 0, len(page.Articles))
	var authorIDs []int64
	seen := map[int64]bool{}
	for _, a := range page.Articles {
		articleIDs = append(articleIDs, a.ID)
		if !seen[a.Author.ID] {
			seen[a.Author.ID] = true
			authorIDs = append(authorIDs, a.Author.ID)
		}
	}
	favorited, following, err := s.store.ViewerMarks(ctx, viewerID, articleIDs, authorIDs)
	if err != nil {
		return ArticlePage{}, err
	}
	out := page
	out.Articles = make([]Article, len(page.Articles))
	for i, a := range page.Articles {
		a.Favorited = favorited[a.ID]
		a.Author.Following = following[a.Author.ID]
		out.Articles[i] = a
	}
	return out, nil
}
