// Package seed generates a large, realistic and deterministic Conduit
// dataset and streams it into a bulk loader: users whose followers follow a
// power law (a hundred celebrities with 10k–200k followers at full scale),
// prolific and occasional authors, Zipf-distributed tags, and favorites and
// comments skewed to popular articles. The same Seed and Scale give the
// same rows (except the password hash, which is salted by its maker).
//
// Every seeded user can sign in: the email of user N is userN@example.com,
// the username userN and the password the one given (conduit seed uses
// "password" unless told otherwise).
package seed

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/conduit-dev/conduit/internal/store"
)

// Full-scale sizes (Scale 1).
const (
	fullUsers     = 1_000_000
	fullFollows   = 20_000_000
	fullArticles  = 2_000_000
	fullFavorites = 10_000_000
	fullComments  = 2_000_000
	tagCount      = 1000
	celebrities   = 100
	maxFollowing  = 1000
	maxFavorited  = 2000
)

// Options control a run.
type Options struct {
	Seed  uint64
	Scale float64
	// PasswordHash is stored for every user: hash one password once.
	PasswordHash string
	// Batch is the number of rows per write (default 20,000).
	Batch int
	// Start, if set, is told the plan once it is known, before writing.
	Start func(Plan)
	// Progress, if set, is called after each batch is written, from one
	// goroutine at a time.
	Progress func(table string, rows int)
	// Step, if set, is told about the finishing steps (index builds).
	Step func(string)
}

// Plan is how many rows of each kind a run writes.
type Plan struct {
	Users, Follows, Articles, ArticleTags, Favorites, Comments, Tags int64
}

// Total is the number of rows written.
func (p Plan) Total() int64 {
	return p.Users + p.Follows + p.Articles + p.ArticleTags + p.Favorites + p.Comments
}

// Tables maps table names to planned row counts.
func (p Plan) Tables() map[string]int64 {
	return map[string]int64{
		"users": p.Users, "follows": p.Follows, "articles": p.Articles,
		"article_tags": p.ArticleTags, "favorites": p.Favorites, "comments": p.Comments,
	}
}

// Sink receives the rows; *store.BulkLoader implementations satisfy it.
type Sink interface {
	Users(ctx context.Context, rows []store.UserRow) error
	Follows(ctx context.Context, rows []store.FollowRow) error
	Articles(ctx context.Context, rows []store.ArticleRow) error
	ArticleTags(ctx context.Context, rows []store.ArticleTagRow) error
	Favorites(ctx context.Context, rows []store.FavoriteRow) error
	Comments(ctx context.Context, rows []store.CommentRow) error
	Finish(ctx context.Context, step func(string)) error
}

// Result describes a finished run.
type Result struct {
	Plan    Plan
	Prepare time.Duration            // computing degrees and counters
	Tables  map[string]time.Duration // from first to last batch of each table
	Finish  time.Duration            // index builds and statistics
	Total   time.Duration
}

// scaled is a full-scale size times scale, at least 1.
func scaled(full int, scale float64) int64 {
	return max(1, int64(math.Round(float64(full)*scale)))
}

// generator holds what a run derives from its options before writing.
type generator struct {
	opts                 Options
	plan                 Plan
	users, articles      int
	userPerm, artPerm    permutation
	celebLaw, followLaw  powerLaw
	authorLaw, favLaw    powerLaw
	commentLaw, userLaw  powerLaw
	tagLaw               powerLaw
	tags                 []string
	followDeg, favDeg    []int32
	favCount, tagsPerArt []int32
	src                  *rand.PCG
	r                    *rand.Rand
}

// Random streams: every entity draws from its own stream, so a row depends
// only on the seed and its own id, not on the order of generation.
const (
	streamFollows = iota + 1
	streamFavorites
	streamArticle
	streamTags
	streamComment
	streamUser
	streamDegrees
)

func newGenerator(opts Options) (*generator, error) {
	if opts.Scale <= 0 || opts.Scale > 10 {
		return nil, fmt.Errorf("scale must be in (0, 10], not %g", opts.Scale)
	}
	if opts.PasswordHash == "" {
		return nil, fmt.Errorf("a password hash is required")
	}
	if opts.Batch <= 0 {
		opts.Batch = 20_000
	}
	s := opts.Scale
	g := &generator{opts: opts}
	g.plan = Plan{
		Users:     max(scaled(fullUsers, s), 2),
		Follows:   scaled(fullFollows, s),
		Articles:  scaled(fullArticles, s),
		Favorites: scaled(fullFavorites, s),
		Comments:  scaled(fullComments, s),
		Tags:      tagCount,
	}
	g.users, g.articles = int(g.plan.Users), int(g.plan.Articles)
	g.userPerm = newPermutation(g.users, opts.Seed)
	g.artPerm = newPermutation(g.articles, opts.Seed>>8)
	// About 12% of follows go to the hundred celebrities (shape 0.65 among
	// them), the rest spread over everyone with a mild power law: at full
	// scale the top account has ~200k followers and the hundredth ~10k.
	g.celebLaw = newPowerLaw(min(celebrities, g.users), 0.65)
	g.followLaw = newPowerLaw(g.users, 0.5)
	g.authorLaw = newPowerLaw(g.users, 0.7)
	g.favLaw = newPowerLaw(g.articles, 0.7)
	g.commentLaw = newPowerLaw(g.articles, 0.6)
	g.userLaw = newPowerLaw(g.users, 0.5)
	g.tagLaw = newPowerLaw(tagCount, 1)
	g.tags = tagNames(tagCount)
	g.src = rand.NewPCG(0, 0)
	g.r = rand.New(g.src)
	return g, nil
}

// rng reseeds the shared generator for one entity of one stream.
func (g *generator) rng(stream, id int64) *rand.Rand {
	g.src.Seed(g.opts.Seed, uint64(stream)<<56^uint64(id)*0x9E3779B97F4A7C15)
	return g.r
}

// prepare computes per-user degrees, tags per article and the favorites
// count of every article, so that article rows carry exact counters.
func (g *generator) prepare() {
	g.followDeg = degrees(g.rng(streamDegrees, 1), g.users, g.plan.Follows, min(maxFollowing, g.users/2))
	g.plan.Follows = sum32(g.followDeg)
	g.favDeg = degrees(g.rng(streamDegrees, 2), g.users, g.plan.Favorites, min(maxFavorited, g.articles/2))
	g.plan.Favorites = sum32(g.favDeg)
	g.favCount = make([]int32, g.articles)
	var buf []int64
	for u := 1; u <= g.users; u++ {
		buf = g.favoritesOf(buf[:0], int64(u))
		for _, a := range buf {
			g.favCount[a-1]++
		}
	}
	g.tagsPerArt = make([]int32, g.articles)
	var tags []int
	for a := 1; a <= g.articles; a++ {
		tags = g.tagsOf(tags[:0], int64(a))
		g.tagsPerArt[a-1] = int32(len(tags))
		g.plan.ArticleTags += int64(len(tags))
	}
}

func sum32(d []int32) int64 {
	var s int64
	for _, v := range d {
		s += int64(v)
	}
	return s
}

// distinct draws until it has n distinct ids other than self, sorted.
// draw returns an id in 1..max.
func distinct(dst []int64, n int, self, maxID int64, r *rand.Rand, draw func(*rand.Rand) int64) []int64 {
	dst = dst[:0]
	for attempt := 0; len(dst) < n && attempt < 8; attempt++ {
		for len(dst) < n {
			id := draw(r)
			if id != self {
				dst = append(dst, id)
			}
		}
		slices.Sort(dst)
		dst = slices.Compact(dst)
	}
	// Rarely (tiny scales) the draws keep colliding: take the next free ids.
	for id := int64(1); len(dst) < n && id <= maxID; id++ {
		if id != self {
			if _, found := slices.BinarySearch(dst, id); !found {
				dst = append(dst, id)
				slices.Sort(dst)
			}
		}
	}
	return dst
}

func (g *generator) followeesOf(dst []int64, follower int64) []int64 {
	r := g.rng(streamFollows, follower)
	return distinct(dst, int(g.followDeg[follower-1]), follower, int64(g.users), r, func(r *rand.Rand) int64 {
		if r.Float64() < 0.12 {
			return g.userPerm.id(g.celebLaw.draw(r))
		}
		return g.userPerm.id(g.followLaw.draw(r))
	})
}

func (g *generator) favoritesOf(dst []int64, user int64) []int64 {
	r := g.rng(streamFavorites, user)
	return distinct(dst, int(g.favDeg[user-1]), 0, int64(g.articles), r, func(r *rand.Rand) int64 {
		return g.artPerm.id(g.favLaw.draw(r))
	})
}

// tagsOf returns the tag indexes of an article: 1 to 4, distinct, in name
// order.
func (g *generator) tagsOf(dst []int, article int64) []int {
	r := g.rng(streamTags, article)
	n := 1
	switch x := r.IntN(100); {
	case x >= 85:
		n = 4
	case x >= 65:
		n = 3
	case x >= 30:
		n = 2
	}
	dst = dst[:0]
	for len(dst) < n {
		t := g.tagLaw.draw(r)
		if !slices.Contains(dst, t) {
			dst = append(dst, t)
		}
	}
	slices.SortFunc(dst, func(a, b int) int {
		if g.tags[a] < g.tags[b] {
			return -1
		}
		return 1
	})
	return dst
}

// The dataset ends at a fixed instant so that runs are reproducible.
var (
	epoch      = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	dataSpan   = 3 * 365 * 24 * time.Hour
	reactDelay = 30 * 24 * 3600 // seconds: favorites, follows and comments come later
)

// userTime: users join over the year before the first article and the
// three years of articles.
func (g *generator) userTime(id int64) time.Time {
	span := dataSpan + 365*24*time.Hour
	return epoch.Add(-span + time.Duration(float64(span)*float64(id)/float64(g.users)).Truncate(time.Second))
}

// articleTime grows with the id, as ids order lists newest first.
func (g *generator) articleTime(id int64) time.Time {
	return epoch.Add(-dataSpan + time.Duration(float64(dataSpan)*float64(id)/float64(g.articles)).Truncate(time.Second))
}

func later(t time.Time, r *rand.Rand) time.Time {
	return t.Add(time.Duration(1+r.IntN(reactDelay)) * time.Second)
}

func username(id int64) string { return "user" + strconv.FormatInt(id, 10) }

// Username returns the username of seeded user id.
func Username(id int64) string { return username(id) }

// Email returns the email of seeded user id.
func Email(id int64) string { return username(id) + "@example.com" }
