package api

import (
	"net/http"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

// writeUser answers with the user and a sign-in token. Nothing may store
// a response holding a token: not a browser or proxy cache, nor the
// idempotency store, which leaves no-store responses out.
func (h *handler) writeUser(w http.ResponseWriter, r *http.Request, status int, u conduit.User, token string) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, status, userResponse{User: userDTO{
		Email: u.Email, Token: token, Username: u.Username, Bio: u.Bio, Image: h.images(r)(u.Image),
	}})
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
	u, err := h.svc.Register(r.Context(), conduit.NewUser{
		Username: req.User.Username, Email: req.User.Email, Password: req.User.Password,
		ClientAddr: httpx.ClientAddr(r),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.writeUser(w, r, http.StatusCreated, u, h.tokens.Issue(u.ID, u.TokenGen))
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
	u, err := h.svc.Login(r.Context(), conduit.SignIn{
		Email: req.User.Email, Password: req.User.Password, ClientAddr: httpx.ClientAddr(r),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.writeUser(w, r, http.StatusOK, u, h.tokens.Issue(u.ID, u.TokenGen))
}

// currentUser answers with the token the client presented: it is as good
// as a new one, and minting one per call would let a stolen token renew
// itself forever.
func (h *handler) currentUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.svc.User(r.Context(), auth.UserID(r.Context()))
	if err != nil {
		writeError(w, r, err)
		return
	}
	token, _ := presentedToken(r)
	h.writeUser(w, r, http.StatusOK, u, token)
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
	c, _ := auth.ClaimsFrom(r.Context())
	u, err := h.svc.UpdateUser(r.Context(), c.UserID, conduit.UserPatch(req.User))
	if err != nil {
		writeError(w, r, err)
		return
	}
	// A new password revoked every earlier token, the presented one too:
	// the client carries on with a fresh one.
	token, _ := presentedToken(r)
	if u.TokenGen != c.Gen {
		token = h.tokens.Issue(u.ID, u.TokenGen)
	}
	h.writeUser(w, r, http.StatusOK, u, token)
}

// logout revokes the presented token (an extension of the spec).
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.ClaimsFrom(r.Context())
	if err := h.svc.SignOut(r.Context(), conduit.Token(c)); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// logoutAll revokes every token of the user, on every device (an extension
// of the spec).
func (h *handler) logoutAll(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.SignOutEverywhere(r.Context(), auth.UserID(r.Context())); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) profile(w http.ResponseWriter, r *http.Request) {
	p, err := h.svc.Profile(r.Context(), auth.UserID(r.Context()), r.PathValue("username"))
	httpx.SetSurrogateKeys(w.Header(), conduit.UserKey(p.ID))
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
