package api

import (
	"net/http"
	"strconv"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

func (h *handler) listArticles(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := conduit.ArticleFilter{Tag: q.Get("tag"), Author: q.Get("author"), FavoritedBy: q.Get("favorited")}
	var err error
	if f.Limit, f.Offset, f.Before, err = pageParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	page, err := h.svc.Articles(r.Context(), auth.UserID(r.Context()), f)
	httpx.SetSurrogateKeys(w.Header(), conduit.ListKeys(f, page)...)
	h.writeArticles(w, r, page, err)
}

func (h *handler) feed(w http.ResponseWriter, r *http.Request) {
	var f conduit.ArticleFilter
	var err error
	if f.Limit, f.Offset, f.Before, err = pageParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	page, err := h.svc.Feed(r.Context(), auth.UserID(r.Context()), f)
	h.writeArticles(w, r, page, err)
}

func (h *handler) writeArticles(w http.ResponseWriter, r *http.Request, page conduit.ArticlePage, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toArticles(page, h.images(r)))
}

func (h *handler) article(w http.ResponseWriter, r *http.Request) {
	a, err := h.svc.Article(r.Context(), auth.UserID(r.Context()), r.PathValue("slug"))
	httpx.SetSurrogateKeys(w.Header(), conduit.ArticleKeys(a)...)
	h.writeArticle(w, r, http.StatusOK, a, err)
}

func (h *handler) createArticle(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Article struct {
			Title       string   `json:"title"`
			Description string   `json:"description"`
			Body        string   `json:"body"`
			TagList     []string `json:"tagList"`
		} `json:"article"`
	}
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	in := req.Article
	a, err := h.svc.CreateArticle(r.Context(), auth.UserID(r.Context()), conduit.NewArticle{
		Title: in.Title, Description: in.Description, Body: in.Body, Tags: in.TagList,
	})
	h.writeArticle(w, r, http.StatusCreated, a, err)
}

func (h *handler) updateArticle(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Article struct {
			Title       *string   `json:"title"`
			Description *string   `json:"description"`
			Body        *string   `json:"body"`
			TagList     *[]string `json:"tagList"` // an addition to the spec
		} `json:"article"`
	}
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	in := req.Article
	a, err := h.svc.UpdateArticle(r.Context(), auth.UserID(r.Context()), r.PathValue("slug"), conduit.ArticlePatch{
		Title: in.Title, Description: in.Description, Body: in.Body, Tags: in.TagList,
	})
	h.writeArticle(w, r, http.StatusOK, a, err)
}

func (h *handler) deleteArticle(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteArticle(r.Context(), auth.UserID(r.Context()), r.PathValue("slug")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) favorite(w http.ResponseWriter, r *http.Request) {
	a, err := h.svc.Favorite(r.Context(), auth.UserID(r.Context()), r.PathValue("slug"))
	h.writeArticle(w, r, http.StatusOK, a, err)
}

func (h *handler) unfavorite(w http.ResponseWriter, r *http.Request) {
	a, err := h.svc.Unfavorite(r.Context(), auth.UserID(r.Context()), r.PathValue("slug"))
	h.writeArticle(w, r, http.StatusOK, a, err)
}

func (h *handler) writeArticle(w http.ResponseWriter, r *http.Request, status int, a conduit.Article, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, status, articleResponse{Article: toArticle(a, true, h.images(r))})
}

// comments lists a page of an article's comments, newest first. Paging
// is an extension of the spec: without parameters the newest
// conduit.DefaultCommentLimit come, with commentsCount and, when older ones
// follow, nextCursor to pass back as ?cursor=; ?limit= sets the page size.
func (h *handler) comments(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	limit, offset, before, err := pageParams(r)
	if err == nil && offset > 0 {
		err = conduit.ValidationError{"offset": {"is not supported for comments: pass nextCursor as cursor"}}
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := h.svc.Comments(r.Context(), auth.UserID(r.Context()), slug,
		conduit.CommentFilter{Limit: limit, Before: before})
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.SetSurrogateKeys(w.Header(), conduit.CommentsKeys(slug, page.Comments)...)
	httpx.WriteJSON(w, http.StatusOK, toComments(page, h.images(r)))
}

func (h *handler) addComment(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Comment struct {
			Body string `json:"body"`
		} `json:"comment"`
	}
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	c, err := h.svc.AddComment(r.Context(), auth.UserID(r.Context()), r.PathValue("slug"), req.Comment.Body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, commentResponse{Comment: toComment(c, h.images(r))})
}

func (h *handler) deleteComment(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, r, conduit.ErrNotFound)
		return
	}
	if err := h.svc.DeleteComment(r.Context(), auth.UserID(r.Context()), r.PathValue("slug"), id); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) tags(w http.ResponseWriter, r *http.Request) {
	tags, err := h.svc.Tags(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.SetSurrogateKeys(w.Header(), conduit.KeyTags)
	httpx.WriteJSON(w, http.StatusOK, tagsResponse{Tags: tags})
}
