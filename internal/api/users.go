package api

import (
	"net/http"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

func (h *handler) userResponse(r *http.Request, u conduit.User) userResponse {
	return userResponse{User: userDTO{
		Email: u.Email, Token: h.tokens.Issue(u.ID), Username: u.Username, Bio: u.Bio, Image: h.images(r)(u.Image),
	}}
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User struct {
			Username string `json:"username"`
			Email    string `json:"email"`
			Password string `json:"password"`
		} `json:"user"`
	}
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	u, err := h.svc.Register(r.Context(), conduit.NewUser(req.User))
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, h.userResponse(r, u))
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User struct {
			Email    string `json:"email"`
			Password string `json:"password"`
		} `json:"user"`
	}
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	u, err := h.svc.Login(r.Context(), req.User.Email, req.User.Password)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h.userResponse(r, u))
}

func (h *handler) currentUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.svc.User(r.Context(), auth.UserID(r.Context()))
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h.userResponse(r, u))
}

func (h *handler) updateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User struct {
			Username *string `json:"username"`
			Email    *string `json:"email"`
			Password *string `json:"password"`
			Bio      *string `json:"bio"`
			Image    *string `json:"image"`
		} `json:"user"`
	}
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	u, err := h.svc.UpdateUser(r.Context(), auth.UserID(r.Context()), conduit.UserPatch(req.User))
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h.userResponse(r, u))
}

func (h *handler) profile(w http.ResponseWriter, r *http.Request) {
	p, err := h.svc.Profile(r.Context(), auth.UserID(r.Context()), r.PathValue("username"))
	h.writeProfile(w, r, p, err)
}

func (h *handler) follow(w http.ResponseWriter, r *http.Request) {
	p, err := h.svc.Follow(r.Context(), auth.UserID(r.Context()), r.PathValue("username"))
	h.writeProfile(w, r, p, err)
}

func (h *handler) unfollow(w http.ResponseWriter, r *http.Request) {
	p, err := h.svc.Unfollow(r.Context(), auth.UserID(r.Context()), r.PathValue("username"))
	h.writeProfile(w, r, p, err)
}

func (h *handler) writeProfile(w http.ResponseWriter, r *http.Request, p conduit.Profile, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, profileResponse{Profile: toProfile(p, h.images(r))})
}
