package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/idemkey"
)

// One-time form tokens. Every form that creates or changes something
// (publish, edit, comment, delete, settings) carries a random token in a
// hidden field, new each time the form is shown. The token is the form's
// idempotency key in the same store the API's Idempotency-Key header uses
// (internal/idempotency), so a double click, a resubmitted form after a
// slow answer or a retry through the load balancer applies the form once,
// on any node, and the repeat is answered with the first result: the same
// redirect (and confirmation).
//
// This is a thin adapter over idempotency.Store rather than its HTTP
// middleware, which answers in the API's JSON shape and stores no
// Location: here a repeat that arrives while the first is still running
// waits for it instead of getting a 409, and a redirect is stored as its
// target.

// formTokenField is the hidden field holding the token.
const formTokenField = "form_token"

// newFormToken returns a fresh token for a form being rendered.
func newFormToken() string { return rand.Text() }

// validFormToken accepts what newFormToken makes (base32, 26 characters).
func validFormToken(t string) bool {
	if len(t) < 16 || len(t) > 64 {
		return false
	}
	for _, c := range t {
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// Timings of form tokens: how long a first attempt may run before a
// repeat takes it for abandoned, how long a repeat waits for it, and how
// long tokens are remembered.
const (
	formLockFor = 10 * time.Second
	formWait    = 10 * time.Second
	formPoll    = 50 * time.Millisecond
	formTTL     = 24 * time.Hour
)

// formResult is what is stored for a form that ended in a redirect: where
// it went and the confirmation it set, so a repeat goes the same way.
type formResult struct {
	Location string `json:"location"`
	Flash    string `json:"flash,omitempty"`
}

// formResultType marks a stored formResult (other answers are stored as
// the page they rendered).
const formResultType = "application/vnd.conduit.form-result+json"

// once applies a signed-in user's form at most once per form token. Forms
// without a token (old pages, other clients) are applied as before.
func (h *handler) once(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		uid := viewerID(r)
		if h.forms == nil || uid == 0 {
			next(w, r)
			return
		}
		if err := parseForm(w, r); err != nil {
			h.fail(w, r, err)
			return
		}
		token := r.PostForm.Get(formTokenField)
		if !validFormToken(token) {
			next(w, r)
			return
		}
		fields := url.Values{}
		for k, v := range r.PostForm {
			if k != formTokenField {
				fields[k] = v
			}
		}
		sum := sha256.Sum256([]byte(fields.Encode())) // sorted by name: the same form, the same text
		a := idemkey.Attempt{
			Key:         idemkey.Key{UserID: uid, Key: "form:" + token, Method: r.Method, Path: r.URL.Path},
			Fingerprint: hex.EncodeToString(sum[:]),
			Token:       rand.Text(),
			LockFor:     formLockFor,
			TTL:         formTTL,
		}
		outcome, stored, err := h.claimForm(r.Context(), a)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		switch outcome {
		case idemkey.Replay:
			h.replayForm(w, r, stored)
			return
		case idemkey.InFlight:
			h.renderStatus(w, r, http.StatusConflict, "This form is still being sent. Wait a moment, then reload the page to see the result.")
			return
		case idemkey.Mismatch:
			h.renderStatus(w, r, http.StatusConflict, "This form was already sent with other content. Open the form again to send something new.")
			return
		case idemkey.Lost:
			h.renderStatus(w, r, http.StatusConflict, "This form was already sent and applied. Reload the page to see the result.")
			return
		}
		h.runForm(w, r, next, idemkey.Claim{Key: a.Key, Token: a.Token})
	}
}

// claimForm claims the token, waiting while an earlier attempt with it is
// still running (the first click of a double click), so that the repeat
// can answer with its result.
func (h *handler) claimForm(ctx context.Context, a idemkey.Attempt) (idemkey.Outcome, idemkey.Response, error) {
	deadline := time.Now().Add(formWait)
	for {
		a.Now = time.Now()
		outcome, stored, err := h.forms.ClaimIdempotencyKey(ctx, a)
		if err != nil {
			return 0, idemkey.Response{}, fmt.Errorf("%w: form token: %w", conduit.ErrUnavailable, err)
		}
		if outcome != idemkey.InFlight || time.Now().After(deadline) {
			return outcome, stored, nil
		}
		select {
		case <-ctx.Done():
			return 0, idemkey.Response{}, ctx.Err()
		case <-time.After(formPoll):
		}
	}
}

// runForm applies the form under the claim and stores its result. The form
// runs to the end even if the browser stops waiting (a second click
// cancels the first request): the repeat then finds its result.
func (h *handler) runForm(w http.ResponseWriter, r *http.Request, next http.HandlerFunc, claim idemkey.Claim) {
	ctx := idemkey.WithClaim(context.WithoutCancel(r.Context()), claim)
	rec := httpx.Buffer(w)
	next(rec, r.WithContext(ctx))
	status := rec.Status()
	if status == 0 {
		status = http.StatusOK
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	var err error
	if loc := w.Header().Get("Location"); status/100 == 3 && loc != "" {
		body, _ := json.Marshal(formResult{Location: loc, Flash: setCookieValue(w.Header(), flashCookie)})
		err = h.forms.CompleteIdempotencyKey(sctx, claim.Key, claim.Token,
			idemkey.Response{Status: status, ContentType: formResultType, Body: body})
	} else {
		// A form sent back with errors applied nothing: forget the token
		// (the page shown has a new one). If something was applied, keep
		// the page as the result.
		var released bool
		released, err = h.forms.ReleaseIdempotencyKey(sctx, claim.Key, claim.Token)
		if err == nil && !released {
			err = h.forms.CompleteIdempotencyKey(sctx, claim.Key, claim.Token,
				idemkey.Response{Status: status, ContentType: w.Header().Get("Content-Type"), Body: rec.Body()})
		}
	}
	if err != nil {
		httpx.LogError(r, http.StatusInternalServerError, fmt.Errorf("store form result: %w", err))
	}
	_ = rec.Send()
}

// replayForm answers a repeated form with the first one's result.
func (h *handler) replayForm(w http.ResponseWriter, r *http.Request, stored idemkey.Response) {
	if stored.ContentType != formResultType {
		w.Header().Set("Content-Type", stored.ContentType)
		w.Header().Set("Cache-Control", "private, no-store")
		w.WriteHeader(stored.Status)
		_, _ = w.Write(stored.Body)
		return
	}
	var res formResult
	if err := json.Unmarshal(stored.Body, &res); err != nil || safeNext(res.Location) != res.Location {
		h.fail(w, r, errors.New("stored form result is unreadable"))
		return
	}
	if _, ok := flashMessages[res.Flash]; ok {
		h.setFlash(w, r, res.Flash)
	}
	http.Redirect(w, r, res.Location, stored.Status)
}

// setCookieValue returns the value of the cookie name that hd sets, or "".
func setCookieValue(hd http.Header, name string) string {
	for _, line := range hd.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == name && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}
