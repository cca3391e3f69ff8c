package conduit

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a search. Searching is the one read whose cost a visitor
// chooses, so every dimension is bounded: the text, its words, and the
// matches ranked (the newest SearchWindow matching articles are ranked and
// paged; older ones are not reached).
const (
	MaxSearchQuery = 200 // characters
	MaxSearchTerms = 8
	MaxSearchTerm  = 40 // characters of one word
	SearchWindow   = 1000
	searchUsers    = 5
	searchTags     = 10
	maxPrefix      = 40
)

// SearchQuery is what a search asks for. Terms are the words of the text
// (letters and digits); an article matches when it has all of them, in
// its title, description or body, stemmed (run finds running).
type SearchQuery struct {
	Terms         []string
	Prefix        string // for users and tags: the text when it is one word, else ""
	Limit, Offset int
}

// SearchResult is a page of ranked articles, plus the users and tags whose
// names start with the text.
type SearchResult struct {
	Articles ArticlePage
	Users    []Profile
	Tags     []string
}

// ParseSearch checks a visitor's search text and page and turns them into
// a SearchQuery.
func ParseSearch(text string, limit, offset int) (SearchQuery, error) {
	v := ValidationError{}
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		v.Add("q", "can't be blank")
	case utf8.RuneCountInString(text) > MaxSearchQuery:
		v.Add("q", "is too long (maximum is %d characters)", MaxSearchQuery)
	case !utf8.ValidString(text) || strings.ContainsRune(text, 0):
		v.Add("q", "must be valid text")
	}
	q := SearchQuery{Limit: limit, Offset: offset}
	if len(v) == 0 {
		q.Terms = strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		switch {
		case len(q.Terms) == 0:
			v.Add("q", "must contain a word")
		case len(q.Terms) > MaxSearchTerms:
			v.Add("q", "has too many words (maximum is %d)", MaxSearchTerms)
		}
		for _, t := range q.Terms {
			if utf8.RuneCountInString(t) > MaxSearchTerm {
				v.Add("q", "has a word that is too long (maximum is %d characters)", MaxSearchTerm)
				break
			}
		}
		if !strings.ContainsFunc(text, unicode.IsSpace) && utf8.RuneCountInString(text) <= maxPrefix {
			q.Prefix = text
		}
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		v.Add("limit", "must be between 1 and %d", MaxLimit)
	}
	if q.Offset < 0 || q.Offset >= SearchWindow {
		v.Add("offset", "must be between 0 and %d", SearchWindow-1)
	}
	return q, v.Err()
}

// Search finds articles by their words, ranked (title matches first, then
// description, then body), and users and tags by the start of their names.
func (s *Service) Search(ctx context.Context, viewerID int64, q SearchQuery) (SearchResult, error) {
	ctx, end := s.span(ctx, "Search")
	defer end()
	var res SearchResult
	var err error
	if res.Articles, err = s.store.SearchArticles(ctx, viewerID, q); err != nil {
		return SearchResult{}, err
	}
	res.Users, res.Tags = []Profile{}, []string{}
	if q.Prefix == "" {
		return res, nil
	}
	if res.Users, err = s.store.UsersByPrefix(ctx, viewerID, q.Prefix, searchUsers); err != nil {
		return SearchResult{}, err
	}
	if res.Tags, err = s.store.TagsByPrefix(ctx, q.Prefix, searchTags); err != nil {
		return SearchResult{}, err
	}
	return res, nil
}
