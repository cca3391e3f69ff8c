package conduit

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// An article's newest comments are kept in the cache for anonymous
// readers, as the article is: every article page and API comments read
// asked the database for them (a count and a page), the most of the
// article page's own cost on the full dataset (docs/performance.md). What
// is kept names each author by id only: a comment shows its author's
// current profile (the cached account, which a profile change drops). A
// new or deleted comment drops the article's key (AddComment,
// DeleteComment), like any cached value's write.
//
// Signed-in readers read their comments from the database as before,
// with their own read-your-writes position: the stage-4 failover drill
// read a commenter's own comment missing from a kept page twice, on a node
// whose peers had stopped waiting for its acknowledgements while its
// listener reconnected during the switchover (the stage-3 caches' window:
// stage3.md), which reads of the database do not have.

// keyComments is the cache key of an article's newest comments.
func keyComments(articleID int64) string { return "comments:" + strconv.FormatInt(articleID, 10) }

// maxKeptComments bounds the bytes kept for one article's comments (50
// comments of 5,000 bytes would be 250 KB): a longer page is read from the
// database each time.
const maxKeptComments = 32 << 10

// errNotKept tells the cache not to keep a load (see maxKeptComments).
var errNotKept = errors.New("comments page too large to keep")

type keptComment struct {
	ID        int64     `json:"id"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	AuthorID  int64     `json:"author"`
}

type keptComments struct {
	Comments []keptComment `json:"comments"`
	Count    int           `json:"count"`
	Next     int64         `json:"next"`
}

// firstComments returns the first page (limit at most
// DefaultCommentLimit) of the article's comments as an anonymous reader
// sees it, from the kept newest DefaultCommentLimit.
func (s *Service) firstComments(ctx context.Context, articleID int64, limit int) (CommentPage, error) {
	kept, err := s.keptComments(ctx, articleID)
	if errors.Is(err, errNotKept) {
		return s.store.Comments(ctx, 0, articleID, CommentFilter{Limit: limit})
	}
	if err != nil {
		return CommentPage{}, err
	}
	page := CommentPage{Comments: make([]Comment, 0, min(limit, len(kept.Comments))), Count: kept.Count, Next: kept.Next}
	if len(kept.Comments) > limit {
		kept.Comments = kept.Comments[:limit]
		page.Next = kept.Comments[limit-1].ID
	}
	authors, err := s.commentAuthors(ctx, kept.Comments)
	if err != nil {
		return CommentPage{}, err
	}
	for _, c := range kept.Comments {
		page.Comments = append(page.Comments, Comment{ID: c.ID, ArticleID: articleID, Body: c.Body,
			CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Author: authors[c.AuthorID]})
	}
	return page, nil
}

// commentAuthors returns the current profiles of the comments' authors,
// each from its cached account (the key Service.account reads and a
// profile change, revocation or delete drops), the accounts the cache
// misses loaded in one statement for the page and kept. On the full
// dataset commenters are drawn from a million users, so a page's authors
// are mostly cold: before they were kept, each later read of the page
// loaded them again (users by id stayed at 91-94% in docs/stage5.md's
// eighth round). A load can race a profile change; the cache keeps a
// loaded account only if no Delete of its key came during the load
// (GetOrLoadMany, as GetOrLoad), so the old profile is never kept. A
// cache that cannot load many keys so keeps none of them.
func (s *Service) commentAuthors(ctx context.Context, comments []keptComment) (map[int64]Profile, error) {
	var ids []int64
	seen := map[int64]bool{}
	for _, c := range comments {
		if !seen[c.AuthorID] {
			seen[c.AuthorID] = true
			ids = append(ids, c.AuthorID)
		}
	}
	ml, ok := s.cache.(manyLoader)
	if !ok {
		return s.commentAuthorsUnkept(ctx, ids)
	}
	accounts, err := loadMany(ctx, ml, s.entryTTL(), ids, keyUser,
		func(missing []int64) (map[int64]account, error) {
			// Fresh, as cached loads: the accounts are kept for minutes.
			users, revoked, err := s.store.UsersByID(Fresh(ctx), missing, s.now())
			if err != nil {
				return nil, err
			}
			out := make(map[int64]account, len(users))
			for id, u := range users {
				u.PasswordHash = "" // as Service.account keeps it
				out[id] = account{User: u, Revoked: revoked[id]}
			}
			return out, nil
		},
		// Not what this version keeps: read it as the account is read.
		func(id int64) (account, error) { return s.account(ctx, id) })
	if err != nil {
		return nil, err // ErrNotFound: deleted meanwhile, its comments too
	}
	authors := make(map[int64]Profile, len(ids))
	for i, a := range accounts {
		authors[ids[i]] = profileOf(a.User)
	}
	return authors, nil
}

// commentAuthorsUnkept is commentAuthors for a cache without
// GetOrLoadMany: each author from its cached account where the cache
// holds it, the others in one statement and not kept (a load that raced a
// profile change could keep the old one; see Cache.GetOrLoad).
func (s *Service) commentAuthorsUnkept(ctx context.Context, ids []int64) (map[int64]Profile, error) {
	authors := make(map[int64]Profile, len(ids))
	var missing []int64
	for _, id := range ids {
		var a account
		if b, ok := s.cache.Get(ctx, keyUser(id)); ok && json.Unmarshal(b, &a) == nil {
			authors[id] = profileOf(a.User)
			continue
		}
		missing = append(missing, id)
	}
	if len(missing) > 0 {
		found, err := s.store.ProfilesByID(ctx, missing)
		if err != nil {
			return nil, err
		}
		for _, id := range missing {
			p, ok := found[id]
			if !ok {
				return nil, ErrNotFound // deleted meanwhile: its comments too
			}
			authors[id] = p
		}
	}
	return authors, nil
}

// keptComments reads the article's kept newest comments, loading them
// once per key on a miss; errNotKept if they are too long to keep and
// another call's load read them.
func (s *Service) keptComments(ctx context.Context, articleID int64) (keptComments, error) {
	var kept keptComments
	var own *keptComments // what this call's load read, kept or not
	load := func() ([]byte, error) {
		p, err := s.store.Comments(Fresh(ctx), 0, articleID, CommentFilter{Limit: DefaultCommentLimit})
		if err != nil {
			return nil, err
		}
		k := keptComments{Comments: make([]keptComment, 0, len(p.Comments)), Count: p.Count, Next: p.Next}
		for _, c := range p.Comments {
			k.Comments = append(k.Comments, keptComment{ID: c.ID, Body: c.Body, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, AuthorID: c.Author.ID})
		}
		own = &k
		b, err := json.Marshal(k)
		if err == nil && len(b) > maxKeptComments {
			return nil, errNotKept
		}
		return b, err
	}
	key := keyComments(articleID)
	var b []byte
	var err error
	if l, ok := s.cache.(loader); ok {
		b, err = l.GetOrLoad(ctx, key, s.entryTTL(), load)
	} else if v, ok := s.cache.Get(ctx, key); ok {
		b = v
	} else if b, err = load(); err == nil {
		s.cache.Set(ctx, key, b, s.entryTTL())
	}
	if errors.Is(err, errNotKept) && own != nil {
		return *own, nil // too long to keep, but read: serve it
	}
	if err != nil {
		return kept, err
	}
	if err := json.Unmarshal(b, &kept); err != nil {
		return kept, errNotKept // not what this version keeps: read the database
	}
	return kept, nil
}
