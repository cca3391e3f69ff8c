package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"html/template"
	"net/http"
	"strconv"
)

// A kept list page leaves its favorites counts out. Every preview shows
// its article's count, and a favorite changes that one number, so a page
// that kept its counts would have to be dropped on every favorite of any
// article it shows (most writes are favorites). Instead the page is
// rendered with a mark where each count goes, kept as the parts between
// the marks and the articles' ids (countedBody), and served with each
// article's current count filled in (conduit.Service.FavoritesCounts, as
// fresh as any cached read). A favorite then drops only the favoriter's
// favorites page, whose list changes.
//
// A mark is the handler's countMarker (a NUL, a random word and a colon),
// the article's id, a colon, the count the page was built with, and a
// NUL. html/template writes no NUL from data (it escapes one as U+FFFD in
// every context the site uses), so no user text can forge a mark; the
// random word makes that certain. Marks exist only in the buffer of the
// page being built: the page cache takes them out before the page is sent
// or kept.

// countMarker starts every mark a handler writes.
type countMarker string

func newCountMarker() countMarker { return countMarker("\x00" + rand.Text()[:16] + ":") }

// countsKey carries, in the context of a page being built to be kept,
// the marker its lists write counts with (see articleList.Button).
type countsKey struct{}

// markerFor returns the marker of a page being built to be kept, or "":
// write counts as numbers.
func markerFor(ctx context.Context) countMarker {
	m, _ := ctx.Value(countsKey{}).(countMarker)
	return m
}

// mark is what a page being kept shows in place of the count n of the
// article with id.
func (m countMarker) mark(id int64, n int) template.HTML {
	return template.HTML(string(m) + strconv.FormatInt(id, 10) + ":" + strconv.Itoa(n) + "\x00")
}

// countedBody is a page without its favorites counts: Parts has one more
// entry than IDs, and the page is Parts[0], the count of IDs[0],
// Parts[1], and so on.
type countedBody struct {
	Parts [][]byte
	IDs   []int64
}

// split takes the marks out of body: the page as kept, and the counts it
// was built with. ok is false if a mark is malformed (never written so):
// then the page is not to be kept, and body holds the rest unsplit.
func (m countMarker) split(body []byte) (b countedBody, built []int, ok bool) {
	for {
		before, rest, found := bytes.Cut(body, []byte(m))
		if !found {
			b.Parts = append(b.Parts, body)
			return b, built, true
		}
		mark, after, closed := bytes.Cut(rest, []byte{0})
		id, n, colon := bytes.Cut(mark, []byte{':'})
		articleID, err1 := strconv.ParseInt(string(id), 10, 64)
		count, err2 := strconv.Atoi(string(n))
		if !closed || !colon || err1 != nil || err2 != nil {
			b.Parts = append(b.Parts, body)
			return b, built, false
		}
		b.Parts = append(b.Parts, before)
		b.IDs = append(b.IDs, articleID)
		built = append(built, count)
		body = after
	}
}

// valid reports whether b has the shape join needs (a page from the
// shared tier is read back from bytes another node wrote).
func (b countedBody) valid() bool { return len(b.Parts) == len(b.IDs)+1 }

// join returns the page with counts[i] in place of the count of IDs[i].
func (b countedBody) join(counts []int) []byte {
	n := 0
	for _, p := range b.Parts {
		n += len(p) + 4
	}
	out := make([]byte, 0, n)
	for i, p := range b.Parts {
		out = append(out, p...)
		if i < len(counts) {
			out = strconv.AppendInt(out, int64(counts[i]), 10)
		}
	}
	return out
}

// currentCounts returns the current favorites counts of the articles p
// shows (none: nil), or false if they cannot be read now.
func (h *handler) currentCounts(r *http.Request, p cachedPage) ([]int, bool) {
	if len(p.body.IDs) == 0 {
		return nil, true
	}
	counts, err := h.svc.FavoritesCounts(r.Context(), p.body.IDs)
	return counts, err == nil
}
