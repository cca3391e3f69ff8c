package web

import (
	"net/http"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

// maxFormBytes bounds a form body; the longest article fits easily.
const maxFormBytes = 1 << 20

// parseForm reads a urlencoded form body of bounded size. A body that is
// too large or malformed is reported as a validation error.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return conduit.ValidationError{"form": {"could not be read (too large or malformed)"}}
	}
	return nil
}

func (h *handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, &loginPage{
		layout: layout{Title: "Sign in", Active: "login"},
		Next:   safeNext(r.URL.Query().Get("next")),
	})
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, r, err)
		return
	}
	email, next := r.PostForm.Get("email"), safeNext(r.PostForm.Get("next"))
	u, err := h.svc.Login(r.Context(), conduit.SignIn{
		Email: email, Password: r.PostForm.Get("password"), ClientAddr: httpx.ClientAddr(r),
	})
	if msgs, ok := formErrors(err); ok {
		h.render(w, r, formStatus(w, err), &loginPage{
			layout: layout{Title: "Sign in", Active: "login"},
			Email:  email, Next: next, Errors: msgs,
		})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.setSession(w, r, u)
	redirect(w, r, next)
}

func (h *handler) registerForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, &registerPage{layout: layout{Title: "Sign up", Active: "register"}})
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, r, err)
		return
	}
	in := conduit.NewUser{
		Username: r.PostForm.Get("username"), Email: r.PostForm.Get("email"), Password: r.PostForm.Get("password"),
		ClientAddr: httpx.ClientAddr(r),
	}
	u, err := h.svc.Register(r.Context(), in)
	if msgs, ok := formErrors(err); ok {
		h.render(w, r, formStatus(w, err), &registerPage{
			layout:   layout{Title: "Sign up", Active: "register"},
			Username: in.Username, Email: in.Email, Errors: msgs,
		})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.setSession(w, r, u)
	h.setFlash(w, r, "welcome")
	redirect(w, r, "/")
}

// formStatus is the status of a form re-rendered because of err: 429 with
// Retry-After for an attempt over a limit, else 422.
func formStatus(w http.ResponseWriter, err error) int {
	if ra := httpx.RetryAfter(err); ra != "" {
		w.Header().Set("Retry-After", ra)
		return http.StatusTooManyRequests
	}
	return http.StatusUnprocessableEntity
}

// logout revokes this browser's token, on every node, and clears the
// cookie; the user's other sessions stay signed in.
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, ok := auth.ClaimsFrom(r.Context()); ok {
		if err := h.svc.SignOut(r.Context(), conduit.Token(c)); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	h.clearSession(w, r)
	redirect(w, r, "/")
}

// logoutEverywhere revokes every token of the user: this browser, other
// browsers and the mobile apps.
func (h *handler) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.SignOutEverywhere(r.Context(), viewerID(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	h.clearSession(w, r)
	redirect(w, r, "/login")
}
