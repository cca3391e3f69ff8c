package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

func articlePath(slug string) string { return "/article/" + url.PathEscape(slug) }

// article shows one article with its rendered body and comments.
func (h *handler) article(w http.ResponseWriter, r *http.Request) {
	p, err := h.articlePage(r, r.PathValue("slug"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.SetSurrogateKeys(w.Header(), conduit.ArticleKeys(p.Article)...)
	httpx.SetSurrogateKeys(w.Header(), conduit.CommentsKey(p.Article.Slug))
	for _, c := range p.Comments {
		httpx.SetSurrogateKeys(w.Header(), conduit.UserKey(c.Author.ID))
	}
	h.render(w, r, http.StatusOK, p)
}

// articlePage loads what the article page shows.
func (h *handler) articlePage(r *http.Request, slug string) (*articlePage, error) {
	id := viewerID(r)
	a, err := h.svc.Article(r.Context(), id, slug)
	if err != nil {
		return nil, err
	}
	comments, err := h.svc.Comments(r.Context(), id, slug)
	if err != nil {
		return nil, err
	}
	p := &articlePage{
		layout:   layout{Title: a.Title},
		Article:  a,
		BodyHTML: h.markdown.Render(a.Body),
		IsAuthor: id != 0 && a.Author.ID == id,
		Here:     articlePath(a.Slug),
	}
	for _, c := range comments {
		p.Comments = append(p.Comments, commentView{Comment: c, CanDelete: id != 0 && c.Author.ID == id})
	}
	return p, nil
}

func (h *handler) newArticleForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, &editorPage{layout: layout{Title: "New article", Active: "editor"}})
}

func (h *handler) createArticle(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, r, err)
		return
	}
	p := editorInput(r)
	p.layout = layout{Title: "New article", Active: "editor"}
	a, err := h.svc.CreateArticle(r.Context(), viewerID(r), conduit.NewArticle{
		Title: p.Title, Description: p.Description, Body: p.Body, Tags: conduit.ParseTags(p.Tags),
	})
	if msgs, ok := formErrors(err); ok {
		p.Errors = msgs
		h.render(w, r, http.StatusUnprocessableEntity, p)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	redirect(w, r, articlePath(a.Slug))
}

// editorInput reads the editor form as typed, to show it again on errors.
func editorInput(r *http.Request) *editorPage {
	f := r.PostForm
	return &editorPage{Title: f.Get("title"), Description: f.Get("description"), Body: f.Get("body"), Tags: f.Get("tags")}
}

// editArticleForm shows the editor filled in; the service refuses anyone
// but the author (403).
func (h *handler) editArticleForm(w http.ResponseWriter, r *http.Request) {
	a, err := h.svc.ArticleForEdit(r.Context(), viewerID(r), r.PathValue("slug"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, &editorPage{
		layout: layout{Title: "Edit article", Active: "editor"},
		Slug:   a.Slug, Title: a.Title, Description: a.Description, Body: a.Body, Tags: strings.Join(a.Tags, " "),
	})
}

func (h *handler) updateArticle(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if err := parseForm(w, r); err != nil {
		h.fail(w, r, err)
		return
	}
	p := editorInput(r)
	p.layout = layout{Title: "Edit article", Active: "editor"}
	p.Slug = slug
	tags := conduit.ParseTags(p.Tags)
	a, err := h.svc.UpdateArticle(r.Context(), viewerID(r), slug, conduit.ArticlePatch{
		Title: &p.Title, Description: &p.Description, Body: &p.Body, Tags: &tags,
	})
	if msgs, ok := formErrors(err); ok {
		p.Errors = msgs
		h.render(w, r, http.StatusUnprocessableEntity, p)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	redirect(w, r, articlePath(a.Slug))
}

func (h *handler) deleteArticle(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if err := h.svc.DeleteArticle(r.Context(), viewerID(r), slug); err != nil {
		h.fail(w, r, err)
		return
	}
	redirect(w, r, "/")
}

func (h *handler) favorite(w http.ResponseWriter, r *http.Request) {
	h.setFavorite(w, r, h.svc.Favorite)
}

func (h *handler) unfavorite(w http.ResponseWriter, r *http.Request) {
	h.setFavorite(w, r, h.svc.Unfavorite)
}

// setFavorite runs a favorite use case and goes back to the page the
// button was on (the form's "next" field), or to the article.
func (h *handler) setFavorite(w http.ResponseWriter, r *http.Request,
	change func(ctx context.Context, viewerID int64, slug string) (conduit.Article, error)) {
	slug := r.PathValue("slug")
	if err := parseForm(w, r); err != nil {
		h.fail(w, r, err)
		return
	}
	back := backTo(r, articlePath(slug))
	if _, err := change(r.Context(), viewerID(r), slug); err != nil {
		h.fail(w, r, err)
		return
	}
	redirect(w, r, back)
}

// backTo is the form's "next" field when it is a path on this site, else
// fallback.
func backTo(r *http.Request, fallback string) string {
	if next := r.PostForm.Get("next"); next != "" && safeNext(next) == next {
		return next
	}
	return fallback
}
