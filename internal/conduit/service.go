package conduit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Service holds the use cases shared by the JSON API and the HTML site.
// Every rule ("only the author may edit", validation, cache invalidation)
// lives here once.
type Service struct {
	store  Store
	cache  Cache
	hasher PasswordHasher
	now    func() time.Time
	// dummyHash is checked against when a login names an unknown email, so
	// that the answer takes as long as for a known one. It is made by the
	// same hasher, at the same cost, on first use.
	dummyHash func() string
	// lists holds anonymous first pages of article lists for a moment,
	// and ledger what writes changed since (listcache.go).
	lists                *listCache
	ledger               listLedger
	listHits, listMisses atomic.Uint64
	// shared keeps those pages, and the site's, for every node when the
	// cache is shared by them (Redis); nil otherwise (listcache.go).
	shared sharedTier
	// rebuild rebuilds in the background the pages a write dropped; nil:
	// readers do (listcache_rebuild.go).
	rebuild *listRebuilder
	// throttle limits sign-in and sign-up attempts; nil: no limits.
	throttle *throttle
	// lastPurge is when this node last deleted expired rows of the
	// sign-in tables (Unix seconds; see housekeep).
	lastPurge atomic.Int64
	// purger tells edge caches what writes changed; nil: no edge.
	purger Purger
	// tracer records a span per use case; nil: none (tracing.go).
	tracer trace.Tracer
	// ttl bounds how long a cached value lives (see WithCacheTTL).
	ttl time.Duration
	// listTTL bounds how long values built from lists live (WithListTTL);
	// listsOn is false when the cache cannot report list changes (no
	// cache: --cache-items 0), and nothing built from lists is kept.
	listTTL time.Duration
	listsOn bool
	// sharedListTTL bounds how long the pages kept in the shared tier
	// live (WithSharedListTTL); 0: listTTL.
	sharedListTTL time.Duration
}

// NewService wires the use cases to their dependencies.
func NewService(store Store, cache Cache, hasher PasswordHasher, opts ...Option) *Service {
	s := &Service{store: store, cache: cache, hasher: hasher, now: time.Now, ttl: DefaultCacheTTL, listTTL: listCacheTTL}
	for _, o := range opts {
		o(s)
	}
	s.lists = newListCache(s.listTTL, listCacheMax, func() time.Time { return s.now() })
	s.listsOn = s.watchLists() // writes on other nodes reach this node's list caches too
	if t, ok := cache.(sharedTier); ok && s.listsOn {
		s.shared = t
	}
	s.dummyHash = sync.OnceValue(func() string {
		h, _ := hasher.Hash(rand.Text())
		return h
	})
	return s
}

// DefaultCacheTTL bounds how long a value may live in a cache even if an
// invalidation were missed; invalidation on write is what keeps reads
// fresh. A cache that cannot miss one for longer than its lease (Redis: a
// node that may have missed one starts a new generation) may keep values
// longer, see WithCacheTTL.
const DefaultCacheTTL = 5 * time.Minute

// WithCacheTTL sets how long cached values live, for a cache whose
// invalidations cannot be missed for longer than that (DefaultCacheTTL by
// default): a longer life means fewer misses in the steady state, each
// key loaded once per ttl.
func WithCacheTTL(d time.Duration) Option {
	return func(s *Service) { s.ttl = d }
}

// entryTTL is the service's ttl less up to a fifth, at random: values
// filled together (a cold start, a warm-up after a deploy) then expire over
// a fifth of the ttl instead of at one moment, when every kind's hit ratio
// dipped and the database took all their loads at once (docs/stage5.md).
func (s *Service) entryTTL() time.Duration { return s.ttl - mrand.N(s.ttl/5) }

// listCacheTTL bounds how long an anonymous first page of a list, or a
// site page built from lists, is kept when no write changes it (see
// listCache), unless WithListTTL says otherwise. One second: a cache that
// hears of other nodes' writes through a listener whose silent death it
// cannot tell before its next ping (up to 18 s) is bounded so. The
// server's caches tell sooner (the stage-3 listener's beats, Redis's
// Sync, one node on SQLite) and keep pages longer (cmd/conduit).
const listCacheTTL = time.Second

// listCacheMax bounds the anonymous first pages one node keeps: the
// global list, ~100 tags' and a few thousand authors' and favoriters'
// lists, at a few KB each.
const listCacheMax = 5000

// WithListTTL sets how long anonymous first pages and the site's pages
// built from lists are kept while no write changes what they show
// (listCacheTTL by default). Longer only with a cache that proves, before
// each use of the list caches, that this node has applied every
// invalidation of a write acknowledged anywhere (the Redis tier's Sync):
// then the ledger, not the ttl, keeps pages fresh, and the ttl only
// bounds memory. Each page lives its ttl less up to a fifth, at random,
// like cached values (entryTTL).
func WithListTTL(d time.Duration) Option {
	return func(s *Service) { s.listTTL = d }
}

// ListTTL is how long to keep a value built from lists now (spread as
// entryTTL spreads), or 0: do not keep it.
func (s *Service) ListTTL() time.Duration {
	if !s.listsOn {
		return 0
	}
	return s.listTTL - mrand.N(s.listTTL/5+1)
}

// Cache keys. Cached values never hold viewer-specific fields.
const keyTags = "tags"

func keyArticle(slug string) string  { return "article:" + slug }
func keyUser(id int64) string        { return "user:" + strconv.FormatInt(id, 10) }
func keyUsername(name string) string { return "username:" + UsernameKey(name) }

// keyFavorites holds an article's favorites count apart from the article
// (keyArticle), so that a favorite invalidates a number, not the article.
func keyFavorites(articleID int64) string { return "favorites:" + strconv.FormatInt(articleID, 10) }

// keyArticleHTML holds the rendering of one body by one renderer
// generation (SaveArticleHTML). What it names never changes, so it is
// never invalidated: an edited body has another hash.
func keyArticleHTML(a Article, version int) string {
	sum := sha256.Sum256([]byte(a.Body))
	return "html:" + strconv.FormatInt(a.ID, 10) + ":" + hex.EncodeToString(sum[:16]) + ":" + strconv.Itoa(version)
}

// NewUser is what a person signs up with, and from where.
type NewUser struct {
	Username, Email, Password string
	// ClientAddr is the address the request came from (sign-ups are
	// throttled per address).
	ClientAddr string
}

// Register validates and creates a user. Sign-ups are counted per client
// address (see ThrottleLimits).
func (s *Service) Register(ctx context.Context, in NewUser) (User, error) {
	ctx, end := s.span(ctx, "Register")
	defer end()
	in.Username = strings.TrimSpace(in.Username)
	v := ValidationError{}
	checkUsername(v, in.Username)
	in.Email = checkEmail(v, in.Email)
	checkPassword(v, in.Password)
	if err := v.Err(); err != nil {
		return User{}, err
	}
	if err := s.throttle.admitSignup(ctx, in.ClientAddr, s.now()); err != nil {
		return User{}, err
	}
	s.housekeep(ctx)
	hash, err := s.hasher.Hash(in.Password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	now := s.now().UTC()
	u := User{Username: in.Username, Email: in.Email, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateUser(ctx, &u); err != nil {
		return User{}, duplicateToValidation(err)
	}
	return u, nil
}

// SignIn is a sign-in attempt: the credentials, and the address they came
// from.
type SignIn struct {
	Email, Password string
	ClientAddr      string
}

// Login checks credentials. A wrong email and a wrong password give the same
// error so that the answer does not reveal which accounts exist. Failed
// attempts are counted per client address and per account, and attempts
// beyond the limits are refused with a *ThrottledError before any password
// is checked (see ThrottleLimits).
func (s *Service) Login(ctx context.Context, in SignIn) (User, error) {
	ctx, end := s.span(ctx, "Login")
	defer end()
	email := canonicalEmail(in.Email)
	v := ValidationError{}
	if email == "" {
		v.Add("email", "can't be blank")
	}
	if in.Password == "" {
		v.Add("password", "can't be blank")
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	settle, err := s.throttle.admitLogin(ctx, in.ClientAddr, email, s.now())
	if err != nil {
		return User{}, err
	}
	s.housekeep(ctx)
	u, err := s.checkPassword(ctx, in.Email, email, in.Password)
	settle(err)
	return u, err
}

func (s *Service) checkPassword(ctx context.Context, raw, email, password string) (User, error) {
	var u User
	err := ErrNotFound // every account's email is text, and PostgreSQL refuses to look for others
	if IsText(raw) {
		// Fresh: a password just changed (or an account just made) must
		// count at once, on whichever node the sign-in lands.
		u, err = s.userByEmail(Fresh(ctx), raw, email)
	}
	if errors.Is(err, ErrNotFound) {
		s.hasher.Check(s.dummyHash(), password) // spend the same time as a real check
		return User{}, ErrInvalidCredentials
	}
	if err != nil {
		return User{}, err
	}
	if !s.hasher.Check(u.PasswordHash, password) {
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}

// userByEmail finds the account of an address as typed (raw) and in its
// canonical form. Before canonical forms were defined (stage 1), addresses
// were stored only trimmed and lower-cased, so one typed in a decomposed
// form (not NFC) was stored so; it is found by the same spelling.
func (s *Service) userByEmail(ctx context.Context, raw, canonical string) (User, error) {
	u, err := s.store.UserByEmail(ctx, canonical)
	if legacy := strings.ToLower(strings.TrimSpace(raw)); errors.Is(err, ErrNotFound) && legacy != canonical {
		u, err = s.store.UserByEmail(ctx, legacy)
	}
	return u, err
}

// User returns the user with the given id, without the password hash,
// from the cache when it can (see account).
func (s *Service) User(ctx context.Context, id int64) (User, error) {
	ctx, end := s.span(ctx, "User")
	defer end()
	a, err := s.account(ctx, id)
	return a.User, err
}

// UserPatch holds the fields a user may change; nil means unchanged.
type UserPatch struct {
	Username, Email, Password, Bio, Image *string
}

// UpdateUser applies a patch to the user's own account. A new password
// revokes every token issued before (the returned user's TokenGen is the
// new generation, for the caller's fresh token).
func (s *Service) UpdateUser(ctx context.Context, id int64, p UserPatch) (User, error) {
	ctx, end := s.span(ctx, "UpdateUser")
	defer end()
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return User{}, err
	}
	oldUsername := u.Username
	v := ValidationError{}
	// A name or address sent back as it is stored needs no check: clients
	// send the whole user back, and one stored before today's rules (see
	// UsernameKey, userByEmail) stays as it is.
	if p.Username != nil {
		if name := strings.TrimSpace(*p.Username); name != u.Username {
			checkUsername(v, name)
			u.Username = name
		}
	}
	if p.Email != nil {
		if email := strings.TrimSpace(*p.Email); email != u.Email {
			u.Email = checkEmail(v, email)
		}
	}
	if p.Bio != nil {
		u.Bio = *p.Bio
		checkBio(v, u.Bio)
	}
	if p.Image != nil {
		u.Image = strings.TrimSpace(*p.Image)
		checkImage(v, u.Image)
	}
	if p.Password != nil && *p.Password != "" {
		checkPassword(v, *p.Password)
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	newPassword := p.Password != nil && *p.Password != ""
	if newPassword {
		if u.PasswordHash, err = s.hasher.Hash(*p.Password); err != nil {
			return User{}, fmt.Errorf("hash password: %w", err)
		}
	}
	u.UpdatedAt = s.now().UTC()
	if err := s.store.UpdateUser(ctx, &u, newPassword); err != nil {
		return User{}, duplicateToValidation(err)
	}
	// Lists show the author's name and image; keyUser also holds the
	// token generation, so every node sees a revocation before we answer.
	edge := []string{UserKey(id), AuthorKey(oldUsername), AuthorKey(u.Username), FavoritesKey(oldUsername), FavoritesKey(u.Username)}
	s.listsChanged(ctx, edge, keyUser(id), keyUsername(oldUsername), keyUsername(u.Username))
	s.purge(edge...)
	u.PasswordHash = ""
	return u, nil
}

// Profile returns the profile of username as seen by viewerID (0: anonymous).
func (s *Service) Profile(ctx context.Context, viewerID int64, username string) (Profile, error) {
	ctx, end := s.span(ctx, "Profile")
	defer end()
	if !IsText(username) {
		return Profile{}, ErrNotFound // nobody is named so, and PostgreSQL refuses to look
	}
	p, err := cached(ctx, s.cache, s.entryTTL(), keyUsername(username), func(ctx context.Context) (Profile, error) {
		u, err := s.store.UserByUsername(ctx, username)
		return profileOf(u), err
	})
	if err != nil {
		return Profile{}, err
	}
	return s.withFollowing(ctx, viewerID, p)
}

// profileByID returns the viewer-independent profile of a user.
func (s *Service) profileByID(ctx context.Context, id int64) (Profile, error) {
	a, err := s.account(ctx, id)
	return profileOf(a.User), err
}

func (s *Service) withFollowing(ctx context.Context, viewerID int64, p Profile) (Profile, error) {
	if viewerID == 0 || viewerID == p.ID {
		return p, nil
	}
	f, err := s.store.IsFollowing(ctx, viewerID, p.ID)
	p.Following = f
	return p, err
}

func profileOf(u User) Profile {
	return Profile{ID: u.ID, Username: u.Username, Bio: u.Bio, Image: u.Image}
}

// Follow makes viewerID follow username. Following oneself is refused.
func (s *Service) Follow(ctx context.Context, viewerID int64, username string) (Profile, error) {
	ctx, end := s.span(ctx, "Follow")
	defer end()
	// Anonymous view: the following flag is what the change makes it, so
	// it is not read first.
	p, err := s.Profile(ctx, 0, username)
	if err != nil {
		return Profile{}, err
	}
	if p.ID == viewerID {
		return Profile{}, ValidationError{"username": {"you cannot follow yourself"}}
	}
	if err := s.store.Follow(ctx, viewerID, p.ID); err != nil {
		return Profile{}, err
	}
	p.Following = true
	return p, nil
}

// Unfollow undoes Follow; unfollowing someone not followed is not an error.
func (s *Service) Unfollow(ctx context.Context, viewerID int64, username string) (Profile, error) {
	ctx, end := s.span(ctx, "Unfollow")
	defer end()
	p, err := s.Profile(ctx, 0, username) // as in Follow
	if err != nil {
		return Profile{}, err
	}
	if err := s.store.Unfollow(ctx, viewerID, p.ID); err != nil {
		return Profile{}, err
	}
	p.Following = false
	return p, nil
}

// NewArticle is what an author writes.
type NewArticle struct {
	Title, Description, Body string
	Tags                     []string
}

// CreateArticle validates and stores an article by authorID.
func (s *Service) CreateArticle(ctx context.Context, authorID int64, in NewArticle) (Article, error) {
	ctx, end := s.span(ctx, "CreateArticle")
	defer end()
	v := ValidationError{}
	in.Title = strings.TrimSpace(in.Title)
	in.Description = strings.TrimSpace(in.Description)
	checkText(v, "title", in.Title, MaxTitle)
	checkText(v, "description", in.Description, MaxDescription)
	checkText(v, "body", in.Body, MaxBody)
	tags := normalizeTags(v, in.Tags)
	if err := v.Err(); err != nil {
		return Article{}, err
	}
	author, err := s.profileByID(ctx, authorID)
	if err != nil {
		return Article{}, err
	}
	now := s.now().UTC()
	a := Article{
		Title: in.Title, Description: in.Description, Body: in.Body, Tags: tags,
		CreatedAt: now, UpdatedAt: now, Author: author,
	}
	if err := s.saveWithUniqueSlug(ctx, &a, s.store.CreateArticle); err != nil {
		return Article{}, err
	}
	edge := listMembershipKeys(author.Username, a.Tags)
	s.listsChanged(ctx, edge, keyTags)
	s.purge(edge...)
	return a, nil
}

// saveWithUniqueSlug gives a the slug of its title, or that slug with a
// random suffix when another article already has it, and saves it.
func (s *Service) saveWithUniqueSlug(ctx context.Context, a *Article, save func(context.Context, *Article) error) error {
	base := Slugify(a.Title)
	a.Slug = base
	for range 5 {
		err := save(ctx, a)
		var dup *DuplicateError
		if !errors.As(err, &dup) || dup.Field != "slug" {
			return err
		}
		a.Slug = slugWithSuffix(base)
	}
	return errors.New("could not find a free slug")
}

// Article returns the article with slug as seen by viewerID. An old slug
// (from before a title change) finds the article too; its Slug is then the
// current one, which callers may compare to redirect.
func (s *Service) Article(ctx context.Context, viewerID int64, slug string) (Article, error) {
	ctx, end := s.span(ctx, "Article")
	defer end()
	a, err := s.articleWithAuthor(ctx, slug)
	if err != nil {
		return Article{}, err
	}
	// So is the favorites count: a favorite invalidates it alone (the
	// count in the cached article may be older).
	if a.FavoritesCount, err = s.favoritesCount(ctx, a.ID); err != nil {
		return Article{}, err
	}
	if viewerID == 0 {
		return a, nil
	}
	if a.Favorited, err = s.store.IsFavorited(ctx, viewerID, a.ID); err != nil {
		return Article{}, err
	}
	if a.Author, err = s.withFollowing(ctx, viewerID, a.Author); err != nil {
		return Article{}, err
	}
	return a, nil
}

// favoritesCount is the article's current favorites count, cached on its
// own (keyFavorites): every favorite and unfavorite invalidates it in the
// same Delete as the lists it changes, so a read that begins after one was
// acknowledged, on any node, sees it. Single articles and the kept list
// pages (which do not depend on counts: see withCurrentCounts) take it
// from here.
func (s *Service) favoritesCount(ctx context.Context, articleID int64) (int, error) {
	return cached(ctx, s.cache, s.entryTTL(), keyFavorites(articleID), func(ctx context.Context) (int, error) {
		return s.store.FavoritesCount(ctx, articleID)
	})
}

// FavoritesCounts returns the current favorites count of each article in
// ids, as Article reads it: for a page kept without its counts (the site's
// kept list pages), filled in when it is served, with the counts the cache
// misses read in one statement (favoritesCounts).
func (s *Service) FavoritesCounts(ctx context.Context, ids []int64) ([]int, error) {
	return s.favoritesCounts(ctx, ids)
}

// articleWithAuthor is Article without the favorites count and the
// viewer's flags: the article with slug and its author's profile, both
// usually from the cache.
func (s *Service) articleWithAuthor(ctx context.Context, slug string) (Article, error) {
	a, err := s.articleRef(ctx, slug)
	if err != nil {
		return Article{}, err
	}
	// The author's profile is cached on its own so that a profile change
	// needs one invalidation, not one per article.
	a.Author, err = s.profileByID(ctx, a.Author.ID)
	return a, err
}

// articleRef finds the article with slug (or an old slug of it) for a
// write or a page that needs its id and slug only: the author's profile
// in it may be older than the author's own, and its favorites count is
// not loaded (a favorite invalidates the count alone, so loading it would
// often cost a query for nothing).
func (s *Service) articleRef(ctx context.Context, slug string) (Article, error) {
	if !IsText(slug) {
		return Article{}, ErrNotFound // no slug is so, and PostgreSQL refuses to look
	}
	return s.articleBySlug(ctx, slug)
}

// articleBySlug returns the viewer-independent article, cached under its
// current slug only: entries under old slugs would outlive the changes
// that invalidate the current one.
func (s *Service) articleBySlug(ctx context.Context, slug string) (Article, error) {
	load := func(slug string) (Article, error) {
		return cached(ctx, s.cache, s.entryTTL(), keyArticle(slug), func(ctx context.Context) (Article, error) {
			return s.store.ArticleBySlug(ctx, 0, slug)
		})
	}
	a, err := load(slug)
	if !errors.Is(err, ErrNotFound) {
		return a, err
	}
	cur, cerr := s.store.CurrentSlug(ctx, slug)
	switch {
	case errors.Is(cerr, ErrNotFound), cerr == nil && cur == slug:
		return Article{}, err
	case cerr != nil:
		return Article{}, cerr
	}
	return load(cur)
}

// ArticlePatch holds the fields an author may change; nil means unchanged.
type ArticlePatch struct {
	Title, Description, Body *string
	Tags                     *[]string
}

// UpdateArticle applies a patch; only the author may do it.
func (s *Service) UpdateArticle(ctx context.Context, viewerID int64, slug string, p ArticlePatch) (Article, error) {
	ctx, end := s.span(ctx, "UpdateArticle")
	defer end()
	a, err := s.ArticleForEdit(ctx, viewerID, slug)
	if err != nil {
		return Article{}, err
	}
	oldTags := a.Tags
	v := ValidationError{}
	titleChanged := false
	if p.Title != nil {
		t := strings.TrimSpace(*p.Title)
		titleChanged = t != a.Title
		a.Title = t
		checkText(v, "title", a.Title, MaxTitle)
	}
	if p.Description != nil {
		a.Description = strings.TrimSpace(*p.Description)
		checkText(v, "description", a.Description, MaxDescription)
	}
	if p.Body != nil {
		a.Body = *p.Body
		checkText(v, "body", a.Body, MaxBody)
	}
	if p.Tags != nil {
		a.Tags = normalizeTags(v, *p.Tags)
	}
	if err := v.Err(); err != nil {
		return Article{}, err
	}
	a.UpdatedAt = s.now().UTC()
	oldSlug := a.Slug
	if titleChanged {
		err = s.saveWithUniqueSlug(ctx, &a, s.store.UpdateArticle)
	} else {
		err = s.store.UpdateArticle(ctx, &a)
	}
	if err != nil {
		return Article{}, err
	}
	a.BodyHTML, a.BodyHTMLVersion = "", 0 // the store forgot it
	keys := []string{ArticleKey(a.ID), KeyTags}
	if a.Slug != oldSlug {
		keys = append(keys, CommentsKey(oldSlug)) // under the old slug: gone
	}
	for _, t := range append(oldTags, a.Tags...) {
		keys = append(keys, TagKey(t)) // the lists it left or joined
	}
	s.listsChanged(ctx, keys, keyArticle(oldSlug), keyArticle(a.Slug), keyTags)
	s.purge(keys...)
	// The answer shows whether the author favorited their own article
	// (following oneself is never true).
	if a.Favorited, err = s.store.IsFavorited(ctx, viewerID, a.ID); err != nil {
		return Article{}, err
	}
	return a, nil
}

// DeleteArticle removes an article with its comments and favorites; only
// the author may do it.
func (s *Service) DeleteArticle(ctx context.Context, viewerID int64, slug string) error {
	ctx, end := s.span(ctx, "DeleteArticle")
	defer end()
	a, err := s.ArticleForEdit(ctx, viewerID, slug)
	if err != nil {
		return err
	}
	if err := s.store.DeleteArticle(ctx, a.ID); err != nil {
		return err
	}
	// Every list: the counts of its favoriters' lists change, and who they
	// are is not known here. Deletes are rare.
	s.listsChanged(ctx, nil, keyArticle(a.Slug), keyTags)
	s.purge(append(listMembershipKeys(a.Author.Username, a.Tags), ArticleKey(a.ID), CommentsKey(a.Slug))...)
	return nil
}

// SaveArticleHTML keeps html, a's body rendered by renderer generation
// version, with the article, unless its body changed since a was read or
// it holds a rendering as new: the site renders each version of an article
// once, on its first view, instead of on every view. The cached article
// is left as it is (invalidating it would make every node load it again
// for a field only the site reads); the rendering is cached under its own
// key, which ArticleHTML reads, and the article's next load from the
// database brings it along.
func (s *Service) SaveArticleHTML(ctx context.Context, a Article, html string, version int) error {
	if err := s.store.SetArticleHTML(ctx, a.ID, a.Body, html, version); err != nil {
		return err
	}
	s.cache.Set(ctx, keyArticleHTML(a, version), []byte(html), s.entryTTL())
	return nil
}

// ArticleHTML returns a rendering of a's body by renderer generation
// version or newer that SaveArticleHTML kept, if there is one in a or in
// the cache. Like the stored one, it is trusted as the sanitizer's output.
func (s *Service) ArticleHTML(ctx context.Context, a Article, version int) (string, bool) {
	if a.BodyHTMLVersion >= version {
		return a.BodyHTML, true
	}
	b, ok := s.cache.Get(ctx, keyArticleHTML(a, version))
	return string(b), ok
}

// ArticleForEdit returns the article with slug for its author to change;
// anyone else (anonymous included) gets ErrForbidden. It is the one place
// that decides who may change an article: UpdateArticle and DeleteArticle
// use it, and the site's editor asks it before showing the form. The
// viewer's flags (favorited, following) are not loaded.
func (s *Service) ArticleForEdit(ctx context.Context, viewerID int64, slug string) (Article, error) {
	ctx, end := s.span(ctx, "ArticleForEdit")
	defer end()
	a, err := s.Article(ctx, 0, slug)
	if err != nil {
		return Article{}, err
	}
	if viewerID == 0 || a.Author.ID != viewerID {
		return Article{}, ErrForbidden
	}
	return a, nil
}

// Page limits.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	MaxOffset    = 1_000_000
)

// checkKeyset checks and defaults a page's limit and offset, and its
// keyset bound (before), which cannot be combined with an offset.
func checkKeyset(limit, offset int, before int64) (int, int, error) {
	v := ValidationError{}
	if before < 0 {
		v.Add("cursor", "is invalid")
	}
	if before > 0 && offset > 0 {
		v.Add("cursor", "cannot be combined with offset")
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		v.Add("limit", "must be between 1 and %d", MaxLimit)
	}
	if offset < 0 || offset > MaxOffset {
		v.Add("offset", "must be between 0 and %d", MaxOffset)
	}
	return limit, offset, v.Err()
}

// checkFilter refuses filter values that are not text (see IsText).
func checkFilter(f ArticleFilter) error {
	v := ValidationError{}
	for field, value := range map[string]string{"tag": f.Tag, "author": f.Author, "favorited": f.FavoritedBy} {
		if !IsText(value) {
			v.Add(field, notText)
		}
	}
	return v.Err()
}

// Articles lists articles, newest first.
func (s *Service) Articles(ctx context.Context, viewerID int64, f ArticleFilter) (ArticlePage, error) {
	ctx, end := s.span(ctx, "Articles")
	defer end()
	var err error
	if f.Limit, f.Offset, err = checkKeyset(f.Limit, f.Offset, f.Before); err != nil {
		return ArticlePage{}, err
	}
	if err := checkFilter(f); err != nil {
		return ArticlePage{}, err
	}
	// A signed-in viewer's first page is the anonymous one with the
	// viewer's marks (viewermarks.go).
	key := listKey(0, f)
	if key == "" || !s.listsOn {
		return s.store.ListArticles(ctx, viewerID, f)
	}
	page, err := s.cachedList(ctx, key, f)
	if err != nil || viewerID == 0 {
		return page, err
	}
	return s.withViewerMarks(ctx, viewerID, page)
}

// syncer is implemented by caches whose invalidations reach this node
// asynchronously (the Redis cache): Sync returns true once every
// invalidation of a write acknowledged before the call, on any node, has
// been applied here, Watch callbacks included; false when it cannot tell.
type syncer interface {
	Sync(ctx context.Context) bool
}

// listsSynced reports whether the list caches may be used now: they hear
// of other nodes' writes through the cache's invalidations, so they are as
// fresh as the cache only once those invalidations have arrived.
func (s *Service) listsSynced(ctx context.Context) bool {
	if c, ok := s.cache.(syncer); ok {
		return c.Sync(ctx)
	}
	return true
}

// Feed lists the articles of the authors viewerID follows, newest first.
// Only f's Limit, Offset and Before apply. An anonymous viewer has no feed:
// ErrUnauthenticated.
func (s *Service) Feed(ctx context.Context, viewerID int64, f ArticleFilter) (ArticlePage, error) {
	ctx, end := s.span(ctx, "Feed")
	defer end()
	if viewerID == 0 {
		return ArticlePage{}, ErrUnauthenticated
	}
	var err error
	if f.Limit, f.Offset, err = checkKeyset(f.Limit, f.Offset, f.Before); err != nil {
		return ArticlePage{}, err
	}
	return s.store.Feed(ctx, viewerID, ArticleFilter{Limit: f.Limit, Offset: f.Offset, Before: f.Before})
}

// Favorite marks the article as a favorite of viewerID.
func (s *Service) Favorite(ctx context.Context, viewerID int64, slug string) (Article, error) {
	ctx, end := s.span(ctx, "Favorite")
	defer end()
	return s.setFavorite(ctx, viewerID, slug, true)
}

// Unfavorite removes the article from viewerID's favorites.
func (s *Service) Unfavorite(ctx context.Context, viewerID int64, slug string) (Article, error) {
	ctx, end := s.span(ctx, "Unfavorite")
	defer end()
	return s.setFavorite(ctx, viewerID, slug, false)
}

func (s *Service) setFavorite(ctx context.Context, viewerID int64, slug string, on bool) (Article, error) {
	// Not s.Article: the count comes from the change itself, the flag is
	// what the change makes it, and whether the viewer follows the author
	// is read by the change's own statement, so nothing is read before (a
	// favorite used to make three queries for these, each taking a pooled
	// connection of its own).
	a, err := s.articleWithAuthor(ctx, slug)
	if err != nil {
		return Article{}, err
	}
	change := s.store.Unfavorite
	if on {
		change = s.store.Favorite
	}
	fc, err := change(ctx, viewerID, a.ID, a.Author.ID)
	if err != nil {
		return Article{}, err
	}
	a.FavoritesCount = fc.Count
	// One's own article: no following flag, as withFollowing.
	a.Author.Following = fc.FollowsAuthor && viewerID != a.Author.ID
	a.Favorited = on
	// The article's count (keyFavorites), and the favoriter's
	// favorited-by list. Not the lists that show the article: their kept
	// pages leave the count out (withCurrentCounts), so they survive it.
	edge, lists := s.favoriteKeys(ctx, viewerID, a.ID)
	if lists == nil {
		s.listsChanged(ctx, nil, keyFavorites(a.ID))
		edge = []string{KeySite}
	} else {
		s.bucketsChanged(ctx, depsOfKeys(lists), keyFavorites(a.ID))
	}
	s.purge(edge...)
	return a, nil
}

// Comment bounds (docs/security.md): pages are at most MaxLimit long and
// DefaultCommentLimit when the client names no limit; an article takes at
// most MaxCommentsPerArticle comments, at most MaxCommentsPerAuthor of them
// from one author.
const (
	DefaultCommentLimit   = 50
	MaxCommentsPerArticle = 10_000
	MaxCommentsPerAuthor  = 1_000
)

// AddComment adds a comment by viewerID to the article.
func (s *Service) AddComment(ctx context.Context, viewerID int64, slug, body string) (Comment, error) {
	ctx, end := s.span(ctx, "AddComment")
	defer end()
	v := ValidationError{}
	checkText(v, "body", body, MaxComment)
	if err := v.Err(); err != nil {
		return Comment{}, err
	}
	a, err := s.articleRef(ctx, slug) // only its id and slug are needed
	if err != nil {
		return Comment{}, err
	}
	author, err := s.profileByID(ctx, viewerID)
	if err != nil {
		return Comment{}, err
	}
	now := s.now().UTC()
	c := Comment{ArticleID: a.ID, Body: body, CreatedAt: now, UpdatedAt: now, Author: author}
	var limit *LimitError
	err = s.store.CreateComment(ctx, &c, CommentLimits{PerArticle: MaxCommentsPerArticle, PerAuthor: MaxCommentsPerAuthor})
	if errors.As(err, &limit) {
		return Comment{}, ValidationError{"comments": {fmt.Sprintf("are limited to %d %s", limit.Max, limit.Name)}}
	}
	if err != nil {
		return Comment{}, err
	}
	s.cache.Delete(ctx, keyComments(a.ID))
	s.purge(CommentsKey(a.Slug))
	return c, nil
}

// Comments lists a page of an article's comments, newest first.
func (s *Service) Comments(ctx context.Context, viewerID int64, slug string, f CommentFilter) (CommentPage, error) {
	ctx, end := s.span(ctx, "Comments")
	defer end()
	if f.Limit == 0 {
		f.Limit = DefaultCommentLimit
	}
	if _, _, err := checkKeyset(f.Limit, 0, f.Before); err != nil {
		return CommentPage{}, err
	}
	a, err := s.articleRef(ctx, slug)
	if err != nil {
		return CommentPage{}, err
	}
	if viewerID == 0 && f.Before == 0 && f.Limit <= DefaultCommentLimit {
		return s.firstComments(ctx, a.ID, f.Limit) // commentcache.go
	}
	return s.store.Comments(ctx, viewerID, a.ID, f)
}

// DeleteComment removes a comment; only its author may do it.
func (s *Service) DeleteComment(ctx context.Context, viewerID int64, slug string, id int64) error {
	ctx, end := s.span(ctx, "DeleteComment")
	defer end()
	a, err := s.articleRef(ctx, slug)
	if err != nil {
		return err
	}
	c, err := s.store.CommentByID(ctx, a.ID, id)
	if err != nil {
		return err
	}
	if c.Author.ID != viewerID {
		return ErrForbidden
	}
	if err := s.store.DeleteComment(ctx, id); err != nil {
		return err
	}
	s.cache.Delete(ctx, keyComments(a.ID))
	s.purge(CommentsKey(a.Slug))
	return nil
}

// Tags lists the tags in use, most used first.
func (s *Service) Tags(ctx context.Context) ([]string, error) {
	ctx, end := s.span(ctx, "Tags")
	defer end()
	return cached(ctx, s.cache, s.entryTTL(), keyTags, func(ctx context.Context) ([]string, error) {
		return s.store.Tags(ctx)
	})
}

// Ping reports whether the store answers.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// loader is implemented by caches that fill a missing key once however
// many readers miss it at the same moment (stampede control; the Redis
// cache loads once per key across all nodes).
type loader interface {
	GetOrLoad(ctx context.Context, key string, ttl time.Duration, load func() ([]byte, error)) ([]byte, error)
}

// cached returns the value under key, or loads, stores (for ttl) and
// returns it. Errors are not cached. The load reads fresh (see Fresh): a
// value kept for minutes must not come from a copy of the data that lags
// behind.
func cached[T any](ctx context.Context, c Cache, ttl time.Duration, key string, load func(ctx context.Context) (T, error)) (T, error) {
	var v T
	if l, ok := c.(loader); ok {
		b, err := l.GetOrLoad(ctx, key, ttl, func() ([]byte, error) {
			v, err := load(Fresh(ctx))
			if err != nil {
				return nil, err
			}
			return json.Marshal(v)
		})
		if err != nil {
			return v, err
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return load(Fresh(ctx)) // not what this version stores: read the database
		}
		return v, nil
	}
	if b, ok := c.Get(ctx, key); ok && json.Unmarshal(b, &v) == nil {
		return v, nil
	}
	v, err := load(Fresh(ctx))
	if err != nil {
		return v, err
	}
	if b, err := json.Marshal(v); err == nil {
		c.Set(ctx, key, b, ttl)
	}
	return v, nil
}

func duplicateToValidation(err error) error {
	var dup *DuplicateError
	if errors.As(err, &dup) {
		return ValidationError{dup.Field: {"has already been taken"}}
	}
	return err
}
