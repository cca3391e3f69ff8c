package web

import (
	"net/http"

	"github.com/conduit-dev/conduit/internal/conduit"
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
	u, err := h.svc.Login(r.Context(), email, r.PostForm.Get("password"))
	if msgs, ok := formErrors(err); ok {
		h.render(w, r, http.StatusUnprocessableEntity, &loginPage{
			layout: layout{Title: "Sign in", Active: "login"},
			Email:  email, Next: next, Errors: msgs,
		})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.setSession(w, r, u.ID)
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
	in := conduit.NewUser{Username: r.PostForm.Get("username"), Email: r.PostForm.Get("email"), Password: r.PostForm.Get("password")}
	u, err := h.svc.Register(r.Context(), in)
	if msgs, ok := formErrors(err); ok {
		h.render(w, r, http.StatusUnprocessableEntity, &registerPage{
			layout:   layout{Title: "Sign up", Active: "register"},
			Username: in.Username, Email: in.Email, Errors: msgs,
		})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.setSession(w, r, u.ID)
	h.setFlash(w, r, "welcome")
	redirect(w, r, "/")
}

// logout clears the cookie. Tokens are stateless, so the token itself
// stays valid until it expires; the cookie holding it is gone.
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	h.clearSession(w, r)
	redirect(w, r, "/")
}
