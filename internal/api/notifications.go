package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

// Notifications, an extension of the spec (docs/openapi-notifications.yml):
// "X followed you", "X and 12 others favorited your article", … created by
// workers from the outbox's jobs.

type notificationDTO struct {
	ID          int64       `json:"id"`
	Kind        string      `json:"kind"`
	Message     string      `json:"message"`
	Actor       actorDTO    `json:"actor"`
	OthersCount int         `json:"othersCount"`
	Article     *articleRef `json:"article"`
	CreatedAt   time.Time   `json:"createdAt"`
	UpdatedAt   time.Time   `json:"updatedAt"`
	Read        bool        `json:"read"`
}

type actorDTO struct {
	Username string `json:"username"`
	Bio      string `json:"bio"`
	Image    string `json:"image"`
}

type articleRef struct {
	Slug  string `json:"slug"`
	Title string `json:"title"`
}

type notificationsResponse struct {
	Notifications []notificationDTO `json:"notifications"`
	UnreadCount   int               `json:"unreadCount"`
	NextCursor    string            `json:"nextCursor,omitempty"`
}

type unreadResponse struct {
	UnreadCount int `json:"unreadCount"`
}

func (h *handler) notifications(w http.ResponseWriter, r *http.Request) {
	v := conduit.ValidationError{}
	limit := queryInt(r, "limit", v)
	if r.URL.Query().Has("limit") && limit == 0 && len(v["limit"]) == 0 {
		v.Add("limit", "must be at least 1")
	}
	var after conduit.NotificationCursor
	if c := r.URL.Query().Get("cursor"); c != "" {
		var ok bool
		if after, ok = decodeNotificationCursor(c); !ok {
			v.Add("cursor", "is invalid")
		}
	}
	if err := v.Err(); err != nil {
		writeError(w, r, err)
		return
	}
	page, err := h.svc.Notifications(r.Context(), auth.UserID(r.Context()), limit, after)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := notificationsResponse{Notifications: make([]notificationDTO, 0, len(page.Notifications)), UnreadCount: page.Unread}
	for _, n := range page.Notifications {
		d := notificationDTO{ID: n.ID, Kind: n.Kind, Message: n.Text(), OthersCount: n.Others,
			Actor:     actorDTO{Username: n.Actor.Username, Bio: n.Actor.Bio, Image: n.Actor.Image},
			CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt, Read: n.Read}
		if n.Article != nil {
			d.Article = &articleRef{Slug: n.Article.Slug, Title: n.Article.Title}
		}
		out.Notifications = append(out.Notifications, d)
	}
	if page.Next.Seq != 0 {
		out.NextCursor = encodeNotificationCursor(page.Next)
	}
	w.Header().Set("Cache-Control", "private, no-store")
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (h *handler) readNotifications(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.MarkNotificationsRead(r.Context(), auth.UserID(r.Context())); err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, unreadResponse{})
}

// notificationCursorPrefix versions the cursor of the notifications list.
const notificationCursorPrefix = "n1."

func encodeNotificationCursor(c conduit.NotificationCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(notificationCursorPrefix +
		strconv.FormatInt(c.Seq, 10) + "." + strconv.FormatInt(c.ID, 10)))
}

func decodeNotificationCursor(s string) (conduit.NotificationCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return conduit.NotificationCursor{}, false
	}
	rest, ok := strings.CutPrefix(string(b), notificationCursorPrefix)
	seqS, idS, ok2 := strings.Cut(rest, ".")
	seq, err1 := strconv.ParseInt(seqS, 10, 64)
	id, err2 := strconv.ParseInt(idS, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || seq <= 0 || id <= 0 {
		return conduit.NotificationCursor{}, false
	}
	return conduit.NotificationCursor{Seq: seq, ID: id}, true
}
