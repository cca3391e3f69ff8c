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
	var (
		ve conduit.ValidationError
		te *conduit.ThrottledError
		p  *Problem
	)
	switch {
	case errors.As(err, &ve):
		return http.StatusUnprocessableEntity, ve.Error()
	case errors.As(err, &te):
		return http.StatusTooManyRequests, te.Error()
	case errors.As(err, &p):
		return p.Status, p.Error()
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

// ErrorWriter answers a request with err in the shape of one surface: the
// API's JSON error body, the site's error page. Middleware shared by the
// surfaces (the limiter, idempotency keys) raise errors and leave the
// writing to the surface they run in front of.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// Problem is an error found by the HTTP plumbing itself rather than by a
// use case (a shed request, a body that does not arrive, a reused
// idempotency key). It carries its status and, in the style of the API's
// error shape, the input it is about and what is wrong with it.
type Problem struct {
	Status int
	Field  string // "body", a header name; "" when it is about no input
	Msg    string // safe to show; follows Field ("is too large")
}

// Error is the whole sentence ("body is too large"), safe to show.
func (p *Problem) Error() string {
	if p.Field == "" {
		return p.Msg
	}
	return p.Field + " " + p.Msg
}

// PlainError is the ErrorWriter of a surface without an error shape of
// its own: the status and its safe message as plain text.
func PlainError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := Status(err)
	LogError(r, status, err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.Error(w, msg, status)
}
