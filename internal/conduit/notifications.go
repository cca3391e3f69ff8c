package conduit

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Notification kinds.
const (
	NotifyFollow   = "follow"
	NotifyFavorite = "favorite"
	NotifyComment  = "comment"
)

// NotificationEvent is one thing a user is told about: Actor followed
// them, or favorited or commented on their Article. Events of one kind
// about one article (all follows, for follows) are coalesced into one
// unread notification ("X and 12 others favorited …") until it is read.
type NotificationEvent struct {
	UserID    int64 // who is told
	Kind      string
	ActorID   int64
	ArticleID int64 // 0 for follows
	// Key names the event: a user is told of one key once, however often
	// its job runs (at-least-once delivery).
	Key string
	At  time.Time
}

// Notification is a coalesced group of events as the user sees it.
type Notification struct {
	ID     int64
	Kind   string
	Actor  Profile // the latest actor (Following is not filled)
	Others int     // how many other actors the group has
	// Article is the article it is about (nil for follows).
	Article   *ArticleRef
	CreatedAt time.Time
	UpdatedAt time.Time // the latest event
	Read      bool
	// Seq orders a user's notifications, newest activity first; with ID it
	// is the keyset cursor of the list.
	Seq int64
}

// ArticleRef names an article in a notification.
type ArticleRef struct {
	Slug, Title string
}

// NotificationCursor continues a list after the last notification of a
// page; the zero value starts at the newest.
type NotificationCursor struct {
	Seq, ID int64
}

// NotificationPage is one page of a user's notifications.
type NotificationPage struct {
	Notifications []Notification
	Unread        int // unread notifications, at most MaxUnreadCount
	// Next continues the list, or is zero on the last page.
	Next NotificationCursor
}

// MaxUnreadCount bounds the unread count (shown as "99+" beyond): counting
// stops there, so the count costs a bounded index range however many
// notifications pile up.
const MaxUnreadCount = 100

// Notifications lists the viewer's notifications, newest activity first.
func (s *Service) Notifications(ctx context.Context, viewerID int64, limit int, after NotificationCursor) (NotificationPage, error) {
	ctx, end := s.span(ctx, "Notifications")
	defer end()
	if viewerID == 0 {
		return NotificationPage{}, ErrUnauthenticated
	}
	limit, _, err := checkKeyset(limit, 0, 0)
	if err != nil {
		return NotificationPage{}, err
	}
	if after.Seq < 0 || after.ID < 0 {
		return NotificationPage{}, ValidationError{"cursor": {"is invalid"}}
	}
	list, err := s.store.Notifications(ctx, viewerID, limit+1, after)
	if err != nil {
		return NotificationPage{}, err
	}
	page := NotificationPage{Notifications: list}
	if len(list) > limit {
		page.Notifications = list[:limit]
		last := list[limit-1]
		page.Next = NotificationCursor{Seq: last.Seq, ID: last.ID}
	}
	page.Unread, err = s.store.UnreadNotifications(ctx, viewerID, MaxUnreadCount)
	return page, err
}

// UnreadNotifications counts the viewer's unread notifications, up to
// MaxUnreadCount: one bounded range of an index, cheap enough for every
// signed-in page's navigation bar.
func (s *Service) UnreadNotifications(ctx context.Context, viewerID int64) (int, error) {
	ctx, end := s.span(ctx, "UnreadNotifications")
	defer end()
	if viewerID == 0 {
		return 0, nil
	}
	return s.store.UnreadNotifications(ctx, viewerID, MaxUnreadCount)
}

// MarkNotificationsRead marks every notification of the viewer read; events
// that come later start new ones.
func (s *Service) MarkNotificationsRead(ctx context.Context, viewerID int64) error {
	ctx, end := s.span(ctx, "MarkNotificationsRead")
	defer end()
	if viewerID == 0 {
		return ErrUnauthenticated
	}
	return s.store.MarkNotificationsRead(ctx, viewerID, s.now().UTC())
}

// The handlers of the notification jobs. Each checks that what it is told
// about is still so when it runs (a follow not undone, a favorite not
// removed, an article not deleted), never tells users of their own
// actions, and records the event under the job's key, so a repeat is a
// no-op.

func (j *Jobs) notifyFollow(ctx context.Context, job Job, p FollowJob) error {
	if p.FollowerID == p.FolloweeID {
		return nil
	}
	ok, err := j.store.IsFollowing(ctx, p.FollowerID, p.FolloweeID)
	if err != nil || !ok {
		return err
	}
	return j.store.AddNotification(ctx, NotificationEvent{UserID: p.FolloweeID, Kind: NotifyFollow,
		ActorID: p.FollowerID, Key: job.Key, At: j.now().UTC()})
}

func (j *Jobs) notifyFavorite(ctx context.Context, job Job, p FavoriteJob) error {
	author, err := j.store.ArticleAuthor(ctx, p.ArticleID)
	if errors.Is(err, ErrNotFound) || author == p.UserID {
		return nil
	}
	if err != nil {
		return err
	}
	ok, err := j.store.IsFavorited(ctx, p.UserID, p.ArticleID)
	if err != nil || !ok {
		return err
	}
	return j.store.AddNotification(ctx, NotificationEvent{UserID: author, Kind: NotifyFavorite,
		ActorID: p.UserID, ArticleID: p.ArticleID, Key: job.Key, At: j.now().UTC()})
}

func (j *Jobs) notifyComment(ctx context.Context, job Job, p CommentJob) error {
	author, err := j.store.ArticleAuthor(ctx, p.ArticleID)
	if errors.Is(err, ErrNotFound) || author == p.AuthorID {
		return nil
	}
	if err != nil {
		return err
	}
	ok, err := j.store.CommentExists(ctx, p.CommentID)
	if err != nil || !ok {
		return err
	}
	return j.store.AddNotification(ctx, NotificationEvent{UserID: author, Kind: NotifyComment,
		ActorID: p.AuthorID, ArticleID: p.ArticleID, Key: job.Key, At: j.now().UTC()})
}

// Text is the notification as a sentence without its article, e.g. "alice
// and 12 others favorited your article".
func (n Notification) Text() string {
	who := n.Actor.Username
	switch {
	case n.Others == 1:
		who += " and 1 other"
	case n.Others > 1:
		who += " and " + strconv.Itoa(n.Others) + " others"
	}
	switch n.Kind {
	case NotifyFollow:
		return who + " followed you"
	case NotifyFavorite:
		return who + " favorited your article"
	case NotifyComment:
		return who + " commented on your article"
	}
	return who
}
