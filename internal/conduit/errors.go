package conduit

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sentinel errors of the domain. The HTTP layers map them to statuses.
var (
	ErrNotFound           = errors.New("not found")
	ErrForbidden          = errors.New("forbidden")
	ErrInvalidCredentials = errors.New("email or password is invalid")
	ErrUnauthenticated    = errors.New("authentication required")
	// ErrUnavailable marks failures of a dependency (database unreachable,
	// timeouts): the request may succeed if retried later.
	ErrUnavailable = errors.New("service unavailable")
)

// ThrottledError refuses an attempt beyond a limit (HTTP 429 with
// Retry-After).
type ThrottledError struct {
	What       string // "sign-in" or "sign-up"
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	wait := fmt.Sprintf("%d seconds", int(e.RetryAfter.Seconds()))
	if e.RetryAfter > time.Minute {
		wait = fmt.Sprintf("%d minutes", int((e.RetryAfter+time.Minute-1)/time.Minute))
	}
	return fmt.Sprintf("too many %s attempts; try again in %s", e.What, wait)
}

// DuplicateError is returned by a Store when a unique constraint is violated.
type DuplicateError struct {
	Field string // "username", "email" or "slug"
}

func (e *DuplicateError) Error() string { return e.Field + " already exists" }

// LimitError is returned by a Store when a write would pass one of the
// bounds it was given.
type LimitError struct {
	Name string // the bound, as in "comments are limited to Max <Name>"
	Max  int
}

func (e *LimitError) Error() string { return fmt.Sprintf("limit of %d %s reached", e.Max, e.Name) }

// ValidationError lists messages per field, as the RealWorld spec's 422
// {"errors": {"field": ["message"]}} expects.
type ValidationError map[string][]string

func (v ValidationError) Error() string {
	fields := make([]string, 0, len(v))
	for f := range v {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		parts = append(parts, f+" "+strings.Join(v[f], ", "))
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// Add records a message for field.
func (v ValidationError) Add(field, format string, args ...any) {
	v[field] = append(v[field], fmt.Sprintf(format, args...))
}

// Err returns v as an error, or nil when there is nothing in it.
func (v ValidationError) Err() error {
	if len(v) == 0 {
		return nil
	}
	return v
}
