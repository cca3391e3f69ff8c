package conduit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Job is work that need not finish inside the request that caused it:
// written to the outbox in the same transaction as the write (so a job
// exists if and only if the write committed), then run by a worker, in
// this process or another, at least once. Handlers are idempotent: a job
// delivered twice has one effect. It is a plain struct that serializes to
// JSON, the envelope of the queue's messages.
type Job struct {
	ID   int64  `json:"id"`   // outbox row; unique per enqueued job
	Kind string `json:"kind"` // one of the Job* kinds
	// Key names the job's effect (e.g. "notify.favorite:12:7"): what a
	// repeat must not do twice. Handlers dedupe on it where the effect is
	// not idempotent by itself (notifications).
	Key     string          `json:"key"`
	Payload json.RawMessage `json:"payload"`
	// Trace is the W3C traceparent of the write that enqueued the job
	// (filled by the store from the context), so that the worker's span of
	// the job joins that trace.
	Trace     string    `json:"trace,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Attempts counts deliveries so far, this one included.
	Attempts int `json:"attempts,omitempty"`
}

// Job kinds. Metrics label by kind, so this set is the whole of them.
const (
	JobFeedPublish    = "feed.publish"    // an article was written: fan it out to followers' timelines
	JobFeedDelete     = "feed.delete"     // an article was deleted: take it out of timelines
	JobFeedFollow     = "feed.follow"     // a follow was made or undone: backfill or clear the pair
	JobTimelineBuild  = "timeline.build"  // build one user's timeline from the follows
	JobNotifyFollow   = "notify.follow"   // "X followed you"
	JobNotifyFavorite = "notify.favorite" // "X favorited your article"
	JobNotifyComment  = "notify.comment"  // "X commented on your article"
)

// JobKinds lists every kind, for metrics with bounded labels.
var JobKinds = []string{JobFeedPublish, JobFeedDelete, JobFeedFollow, JobTimelineBuild,
	JobNotifyFollow, JobNotifyFavorite, JobNotifyComment}

// Payloads of the kinds, plain structs.
type (
	// ArticleJob is the payload of feed.publish and feed.delete.
	ArticleJob struct {
		ArticleID int64 `json:"articleId"`
		AuthorID  int64 `json:"authorId"`
	}
	// FollowJob is the payload of feed.follow and notify.follow. It says
	// which pair changed, not how: the handler reads the pair's current
	// state, so a follow and an unfollow handled in either order leave
	// what the tables say.
	FollowJob struct {
		FollowerID int64 `json:"followerId"`
		FolloweeID int64 `json:"followeeId"`
	}
	// UserJob is the payload of timeline.build.
	UserJob struct {
		UserID int64 `json:"userId"`
	}
	// FavoriteJob is the payload of notify.favorite.
	FavoriteJob struct {
		UserID    int64 `json:"userId"`
		ArticleID int64 `json:"articleId"`
	}
	// CommentJob is the payload of notify.comment.
	CommentJob struct {
		CommentID int64 `json:"commentId"`
		ArticleID int64 `json:"articleId"`
		AuthorID  int64 `json:"authorId"`
	}
)

func newJob(kind, key string, payload any) Job {
	b, err := json.Marshal(payload)
	if err != nil {
		panic("conduit: job payload: " + err.Error()) // plain structs of integers always marshal
	}
	return Job{Kind: kind, Key: kind + ":" + key, Payload: b}
}

func ids(v ...int64) string {
	b := make([]byte, 0, 24)
	for i, id := range v {
		if i > 0 {
			b = append(b, ':')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}

// The jobs each write enqueues, in its transaction. The store calls these
// so that which writes cause which work is decided here, once.

// ArticleCreatedJobs: the article goes into followers' timelines.
func ArticleCreatedJobs(articleID, authorID int64) []Job {
	return []Job{newJob(JobFeedPublish, ids(articleID), ArticleJob{articleID, authorID})}
}

// ArticleDeletedJobs: the article leaves every timeline. (An edit needs
// nothing: timelines hold ids.)
func ArticleDeletedJobs(articleID, authorID int64) []Job {
	return []Job{newJob(JobFeedDelete, ids(articleID), ArticleJob{articleID, authorID})}
}

// FollowedJobs: the followee's recent articles go into the follower's
// timeline, and the followee hears of it.
func FollowedJobs(followerID, followeeID int64) []Job {
	p := FollowJob{followerID, followeeID}
	return []Job{
		newJob(JobFeedFollow, ids(followerID, followeeID), p),
		newJob(JobNotifyFollow, ids(followeeID, followerID), p),
	}
}

// UnfollowedJobs: the followee's articles leave the follower's timeline.
func UnfollowedJobs(followerID, followeeID int64) []Job {
	return []Job{newJob(JobFeedFollow, ids(followerID, followeeID), FollowJob{followerID, followeeID})}
}

// FavoritedJobs: the article's author hears of it (coalesced).
func FavoritedJobs(userID, articleID int64) []Job {
	return []Job{newJob(JobNotifyFavorite, ids(articleID, userID), FavoriteJob{userID, articleID})}
}

// CommentedJobs: the article's author hears of it.
func CommentedJobs(commentID, articleID, authorID int64) []Job {
	return []Job{newJob(JobNotifyComment, ids(commentID), CommentJob{commentID, articleID, authorID})}
}

// TimelineBuildJob builds a user's timeline (users that existed before
// timelines did, or whose timeline was dropped).
func TimelineBuildJob(userID int64) Job {
	return newJob(JobTimelineBuild, ids(userID), UserJob{userID})
}

// ErrPoison marks a job that can never succeed (an unknown kind, a payload
// that does not decode): it goes to the dead letters at once instead of
// being retried.
var ErrPoison = errors.New("poison job")

// JobStore is what the job handlers need from storage. Every method is
// idempotent and reads the current state of the tables it reconciles, so
// a repeated or reordered job leaves the same result.
type JobStore interface {
	// FanOut puts the article in the timelines of its author's followers
	// (unless the author has more than opts.MaxFollowers: then it is
	// merged in when feeds are read) and updates their feed counts.
	FanOut(ctx context.Context, articleID, authorID int64, opts FeedOptions) error
	// Unpublish takes the article out of every timeline.
	Unpublish(ctx context.Context, articleID, authorID int64, opts FeedOptions) error
	// SyncFollow makes the follower's timeline agree with whether the
	// follow exists now.
	SyncFollow(ctx context.Context, followerID, followeeID int64, opts FeedOptions) error
	// BuildTimeline builds a user's timeline from the follows.
	BuildTimeline(ctx context.Context, userID int64, opts FeedOptions) error
	// AddNotification records one event for a user's notifications (see
	// NotificationEvent), once however often it is called.
	AddNotification(ctx context.Context, e NotificationEvent) error
	// The facts the notification handlers check before notifying.
	IsFollowing(ctx context.Context, followerID, followeeID int64) (bool, error)
	IsFavorited(ctx context.Context, userID, articleID int64) (bool, error)
	ArticleAuthor(ctx context.Context, articleID int64) (int64, error)
	CommentExists(ctx context.Context, commentID int64) (bool, error)
}

// FeedOptions tune the fan-out of feeds.
type FeedOptions struct {
	// MaxFollowers: authors with more followers ("celebrities") are not
	// fanned out on write; their articles are merged in on read.
	MaxFollowers int
	// TimelineCap is how many of the newest articles a timeline keeps;
	// older pages are read the way feeds were read before timelines.
	TimelineCap int
}

// Default feed options.
const (
	DefaultFanoutMaxFollowers = 10_000
	DefaultTimelineCap        = 1_000
)

func (o FeedOptions) withDefaults() FeedOptions {
	if o.MaxFollowers <= 0 {
		o.MaxFollowers = DefaultFanoutMaxFollowers
	}
	if o.TimelineCap <= 0 {
		o.TimelineCap = DefaultTimelineCap
	}
	return o
}

// Jobs runs jobs: the use cases of the background work (feed fan-out,
// notifications), shared by every way jobs are delivered.
type Jobs struct {
	store JobStore
	feed  FeedOptions
	now   func() time.Time
}

// NewJobs returns the handlers of every job kind.
func NewJobs(store JobStore, feed FeedOptions) *Jobs {
	return &Jobs{store: store, feed: feed.withDefaults(), now: time.Now}
}

// Handle runs one job to completion. It returns nil once the job's effect
// is committed, ErrPoison (wrapped) for a job that cannot ever succeed,
// or another error to retry later.
func (j *Jobs) Handle(ctx context.Context, job Job) error {
	// A job may run the moment its write commits, before any replica has
	// it: its reads go to the primary.
	ctx = Latest(ctx)
	switch job.Kind {
	case JobFeedPublish:
		var p ArticleJob
		if err := decode(job, &p); err != nil {
			return err
		}
		return j.store.FanOut(ctx, p.ArticleID, p.AuthorID, j.feed)
	case JobFeedDelete:
		var p ArticleJob
		if err := decode(job, &p); err != nil {
			return err
		}
		return j.store.Unpublish(ctx, p.ArticleID, p.AuthorID, j.feed)
	case JobFeedFollow:
		var p FollowJob
		if err := decode(job, &p); err != nil {
			return err
		}
		return j.store.SyncFollow(ctx, p.FollowerID, p.FolloweeID, j.feed)
	case JobTimelineBuild:
		var p UserJob
		if err := decode(job, &p); err != nil {
			return err
		}
		return j.store.BuildTimeline(ctx, p.UserID, j.feed)
	case JobNotifyFollow:
		var p FollowJob
		if err := decode(job, &p); err != nil {
			return err
		}
		return j.notifyFollow(ctx, job, p)
	case JobNotifyFavorite:
		var p FavoriteJob
		if err := decode(job, &p); err != nil {
			return err
		}
		return j.notifyFavorite(ctx, job, p)
	case JobNotifyComment:
		var p CommentJob
		if err := decode(job, &p); err != nil {
			return err
		}
		return j.notifyComment(ctx, job, p)
	}
	return fmt.Errorf("%w: unknown kind %q", ErrPoison, job.Kind)
}

func decode(job Job, into any) error {
	if err := json.Unmarshal(job.Payload, into); err != nil {
		return fmt.Errorf("%w: %s payload: %w", ErrPoison, job.Kind, err)
	}
	return nil
}

// PendingJob is a job waiting in the outbox (or being worked on), with the
// error of its last attempt.
type PendingJob struct {
	Job
	RunAt     time.Time // due then (or its lease ends then)
	LastError string
}

// DeadJob is a job that failed every attempt (a dead letter).
type DeadJob struct {
	Job
	LastError string
	DiedAt    time.Time
}

// JobStats is the outbox of one kind of job.
type JobStats struct {
	Kind    string
	Pending int       // in the outbox, due or not
	Oldest  time.Time // creation of the oldest pending job (zero: none)
	Dead    int       // dead letters
}
