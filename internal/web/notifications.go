package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// notificationsPage lists the signed-in user's notifications, newest
// activity first, a page at a time (keyset: ?after=seq.id).
type notificationsPage struct {
	layout
	Notifications []conduit.Notification
	Unread        int
	Next          string // the next page's URL, or ""
}

func (*notificationsPage) template() string { return "notifications" }

func (h *handler) notifications(w http.ResponseWriter, r *http.Request) {
	var after conduit.NotificationCursor
	if s := r.URL.Query().Get("after"); s != "" {
		var ok bool
		if after, ok = parseAfter(s); !ok {
			h.fail(w, r, conduit.ErrNotFound)
			return
		}
	}
	page, err := h.svc.Notifications(r.Context(), viewerID(r), perPage, after)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := &notificationsPage{layout: layout{Title: "Notifications", Active: "notifications"},
		Notifications: page.Notifications, Unread: page.Unread}
	if page.Next.Seq != 0 {
		p.Next = "/notifications?after=" + strconv.FormatInt(page.Next.Seq, 10) + "." + strconv.FormatInt(page.Next.ID, 10)
	}
	h.render(w, r, http.StatusOK, p)
}

// parseAfter reads the "seq.id" of a notifications page link.
func parseAfter(s string) (conduit.NotificationCursor, bool) {
	a, b, found := strings.Cut(s, ".")
	seq, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	ok := found && err1 == nil && err2 == nil && seq > 0 && id > 0
	return conduit.NotificationCursor{Seq: seq, ID: id}, ok
}

// readNotifications marks every notification read and shows the list again.
func (h *handler) readNotifications(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.MarkNotificationsRead(r.Context(), viewerID(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	redirect(w, r, "/notifications")
}
