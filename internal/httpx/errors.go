package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// Status maps an error to an HTTP status and a message safe to show.
// Validation errors carry their own messages; everything unexpected is a
// 500 with a generic message.
func Status(err error) (int, string) {
	var ve conduit.ValidationError
	var te *conduit.ThrottledError
	switch {
	case errors.As(err, &ve):
		return http.StatusUnprocessableEntity, ve.Error()
	case errors.As(err, &te):
		return http.StatusTooManyRequests, te.Error()
	case errors.Is(err, conduit.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, conduit.ErrForbidden):
		return http.StatusForbidden, "you are not allowed to do that"
	case errors.Is(err, conduit.ErrInvalidCredentials):
		return http.StatusUnauthorized, "email or password is invalid"
	case errors.Is(err, conduit.ErrUnauthenticated):
		return http.StatusUnauthorized, "authentication required"
	case errors.Is(err, conduit.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "the service is busy or a dependency is down; try again shortly"
	case errors.Is(err, context.Canceled):
		return 499, "request canceled" // client went away; nobody reads this
	}
	return http.StatusInternalServerError, "internal error"
}

// RetryAfter is the Retry-After header value for err, or "" when the
// request should not simply be repeated later.
func RetryAfter(err error) string {
	var te *conduit.ThrottledError
	if errors.As(err, &te) {
		return strconv.Itoa(int(te.RetryAfter / time.Second))
	}
	if status, _ := Status(err); status == http.StatusServiceUnavailable {
		return "1"
	}
	return ""
}

// LogError logs err once, where it is turned into a response, at a level
// that matches its status.
func LogError(r *http.Request, status int, err error) {
	if status < 500 {
		return
	}
	logger(r.Context()).ErrorContext(r.Context(), "request failed",
		slog.String("request_id", RequestID(r.Context())),
		slog.String("route", r.Pattern), slog.Int("status", status), slog.Any("error", err))
}
