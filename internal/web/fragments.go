package web

import (
	"crypto/rand"
	"errors"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/conduit-dev/conduit/internal/cache/ttl"
	"github.com/conduit-dev/conduit/internal/conduit"
)

// A list page (home, a tag, a profile, search) shows ten article
// previews, and rendering them was most of the cost of a list page that no
// kept copy serves: html/template finds each field by reflection and calls
// each escaper through reflect.Value.Call, some thirty times a preview.
// Yet a preview changes only when its article or its author does, while
// the same article is shown on many pages (the global feed, its tags',
// its author's) and a page is built again as soon as its kept copy
// expires (1 s with the stage-3 caches), or for every signed-in view. So
// each preview is rendered once and kept in process, and a list is its
// kept previews written one after the other. The popular tags beside the
// home and tag pages (a hundred links, the rest of those pages' cost) are
// likewise rendered once per list of tags, and the article page's meta
// (author, date, follow and favorite buttons: 40 actions) once per
// article and viewer state, with a hole for the favorites count.
//
// Two things a preview shows are not its article's: the address of the
// page it is on (in the favorite button's "next" field, where the form
// comes back to) and the favorites count, which every favorite changes
// (and which is a mark in a page built to be kept, pagecache_counts.go).
// A preview is rendered with a hole in the place of each, a random word
// that html/template writes unchanged there, and kept as the three parts
// around them; a list fills the holes with its address, escaped as the
// template escapes that field, and the count as the button writes it
// (favoriteButton.Count). The viewer's favorited state, the button's form
// and style, is part of the key: a signed-in viewer's favorited articles
// have previews of their own. The button has no form token (favoriting is
// safe to repeat), so nothing else in a preview is the viewer's.
//
// A kept preview is used only while its article shows exactly what it
// was rendered from (previewSource, compared on every use): an edit, a
// new avatar or a new username shows at once, however the article was
// read, with no invalidation to miss. A preview whose text happens to
// hold a hole's word is not kept but rendered with its page.
type fragments struct {
	views *views
	// previews holds the previews by article and favorited state (see
	// previewKey); nil: nothing is kept, every fragment is rendered with
	// its page, as the templates alone would (what the tests compare the
	// kept ones with).
	previews *ttl.Map[preview]
	// here and count are the holes' words.
	here, count string
	// tags is the popular tags' list as last rendered.
	tags atomic.Pointer[renderedTags]
	// metas holds the article pages' metas (author, date, follow and
	// favorite buttons) by article and the viewer's state (metaKey), as
	// previews; nil when nothing is kept.
	metas *ttl.Map[keptMeta]
}

// maxPreviews bounds the previews kept, and the metas, at 1-2 KB each:
// the articles of a few hundred list pages. They are dropped after
// previewTTL unused, or a quarter at a time when the map is full (ttl.Map).
const (
	maxPreviews = 4096
	previewTTL  = 10 * time.Minute
)

// newFragments returns the fragments of v's templates, with at most max
// previews kept (0: nothing kept, every fragment rendered with its page).
func newFragments(v *views, max int) *fragments {
	// rand.Text is base32: letters and digits, which no escaper changes.
	f := &fragments{views: v, here: "here" + rand.Text(), count: "count" + rand.Text()}
	if max > 0 {
		f.previews = ttl.New[preview](previewTTL, max, time.Now)
		f.metas = ttl.New[keptMeta](previewTTL, max, time.Now)
	}
	return f
}

// renderedTags is the popular-tags partial rendered for tags.
type renderedTags struct {
	tags []string
	html template.HTML
}

// popularTags is the HTML of the popular tags' list.
func (f *fragments) popularTags(tags []string) (template.HTML, error) {
	if k := f.tags.Load(); k != nil && slices.Equal(k.tags, tags) {
		return k.html, nil
	}
	var b strings.Builder
	if err := f.views.partial(&b, "popular-tags", tags); err != nil {
		return "", err
	}
	html := template.HTML(b.String())
	if f.previews != nil {
		f.tags.Store(&renderedTags{tags: slices.Clone(tags), html: html})
	}
	return html, nil
}

// preview is a kept preview: parts[0], the page's address (escaped),
// parts[1], the count, parts[2].
type preview struct {
	source previewSource
	parts  [3]string
}

// articles is the previews of l's articles.
func (f *fragments) articles(l articleList) (template.HTML, error) {
	if f == nil {
		return "", errors.New("article list without previews: fill it")
	}
	var (
		b       strings.Builder
		here    string // l.Here escaped, once a kept preview needs it
		escaped bool
	)
	for _, a := range l.Articles {
		k, ok, err := f.preview(a)
		if err != nil {
			return "", err
		}
		button := l.button(a)
		if !ok {
			if err := f.views.partial(&b, "article-preview", button); err != nil {
				return "", err
			}
			continue
		}
		if !escaped {
			if here, err = f.views.attrValue(l.Here); err != nil {
				return "", err
			}
			escaped = true
			b.Grow(len(l.Articles) * (len(k.parts[0]) + len(here) + len(k.parts[1]) + 32 + len(k.parts[2])))
		}
		b.WriteString(k.parts[0])
		b.WriteString(here)
		b.WriteString(k.parts[1])
		b.WriteString(string(button.Count()))
		b.WriteString(k.parts[2])
	}
	return template.HTML(b.String()), nil
}

// preview returns the kept preview of a, rendering and keeping it if there is
// none for a as it is now. It is not ok if previews are not kept, or a's
// cannot be (its text holds a hole's word).
func (f *fragments) preview(a conduit.Article) (preview, bool, error) {
	if f.previews == nil {
		return preview{}, false, nil
	}
	key := previewKey(a)
	k, ok, gen := f.previews.Get(key)
	if ok && k.source.shows(a) {
		return k, true, nil
	}
	var b strings.Builder
	holes := favoriteButton{Article: a, Next: f.here + "#" + previewID(a.Slug), hole: template.HTML(f.count)}
	if err := f.views.partial(&b, "article-preview", holes); err != nil {
		return preview{}, false, err
	}
	s := b.String()
	if strings.Count(s, f.here) != 1 || strings.Count(s, f.count) != 1 {
		return preview{}, false, nil
	}
	before, rest, _ := strings.Cut(s, f.here)
	between, after, ok := strings.Cut(rest, f.count)
	if !ok {
		return preview{}, false, nil
	}
	k = preview{source: sourceOf(a), parts: [3]string{before, between, after}}
	f.previews.Put(key, k, gen)
	return k, true, nil
}

// previewKey names the preview of a for its viewer: the article, and
// whether the viewer favorited it.
func previewKey(a conduit.Article) string {
	key := strconv.FormatInt(a.ID, 10)
	if a.Favorited {
		key += "+"
	}
	return key
}

// previewSource is what a preview shows of its article, but for the
// favorited state (in its key) and the count (a hole).
type previewSource struct {
	slug, title, description string
	tags                     []string
	created                  time.Time
	author, image            string
}

func sourceOf(a conduit.Article) previewSource {
	return previewSource{
		slug: a.Slug, title: a.Title, description: a.Description, tags: slices.Clone(a.Tags),
		created: a.CreatedAt, author: a.Author.Username, image: a.Author.Image,
	}
}

// shows reports whether a preview rendered from s shows a as it is now.
// The date is written in the time's own zone, so the same instant in
// another zone is another preview.
func (s previewSource) shows(a conduit.Article) bool {
	_, zone := s.created.Zone()
	_, other := a.CreatedAt.Zone()
	return s.slug == a.Slug && s.title == a.Title && s.description == a.Description &&
		s.author == a.Author.Username && s.image == a.Author.Image &&
		s.created.Equal(a.CreatedAt) && zone == other && slices.Equal(s.tags, a.Tags)
}

// keptMeta is a kept article meta: parts[0], the favorites count,
// parts[1].
type keptMeta struct {
	source metaSource
	parts  [2]string
}

// metaSource is what an article meta shows but for the viewer's state (in
// its key) and the count (a hole).
type metaSource struct {
	here, slug, author, image string
	created                   time.Time
}

func metaSourceOf(p *articlePage) metaSource {
	a := p.Article
	return metaSource{here: p.Here, slug: a.Slug, author: a.Author.Username, image: a.Author.Image, created: a.CreatedAt}
}

// shows reports whether a meta rendered from s shows p's as it is now.
func (s metaSource) shows(p *articlePage) bool {
	a := p.Article
	_, zone := s.created.Zone()
	_, other := a.CreatedAt.Zone()
	return s.here == p.Here && s.slug == a.Slug && s.author == a.Author.Username && s.image == a.Author.Image &&
		s.created.Equal(a.CreatedAt) && zone == other
}

// metaKey names the meta of a for its viewer: the article, whether the
// viewer favorited it and whether they follow its author.
func metaKey(a conduit.Article) string {
	key := previewKey(a)
	if a.Author.Following {
		key += "f"
	}
	return key
}

// articleMeta is the HTML of the meta of the article page p (not its
// author's: that one carries one-time tokens).
func (f *fragments) articleMeta(p *articlePage) (template.HTML, error) {
	var b strings.Builder
	if f.metas == nil {
		err := f.views.partial(&b, "article-meta", p)
		return template.HTML(b.String()), err
	}
	key := metaKey(p.Article)
	k, ok, gen := f.metas.Get(key)
	if !ok || !k.source.shows(p) {
		holes := *p
		holes.hole = template.HTML(f.count)
		if err := f.views.partial(&b, "article-meta", &holes); err != nil {
			return "", err
		}
		s := b.String()
		if strings.Count(s, f.count) != 1 {
			b.Reset()
			err := f.views.partial(&b, "article-meta", p)
			return template.HTML(b.String()), err
		}
		before, after, _ := strings.Cut(s, f.count)
		k = keptMeta{source: metaSourceOf(p), parts: [2]string{before, after}}
		f.metas.Put(key, k, gen)
	}
	return template.HTML(k.parts[0] + string(p.FavoriteButton().Count()) + k.parts[1]), nil
}
