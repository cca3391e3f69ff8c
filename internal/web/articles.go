package web

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

func articlePath(slug string) string { return "/article/" + url.PathEscape(slug) }

// article shows one article with its rendered body and comments.
// An old slug (from before a title change) is sent on to the current one
// for good (301), so links and bookmarks keep working.
func (h *handler) article(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	p, err := h.articlePage(r, slug)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if p.Article.Slug != slug {
		http.Redirect(w, r, articlePath(p.Article.Slug), http.StatusMovedPermanently)
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
	before := olderThan(r.URL.Query())
	comments, err := h.svc.Comments(r.Context(), id, a.Slug, conduit.CommentFilter{Limit: commentsPerPage, Before: before})
	if err != nil {
		return nil, err
	}
	p := &articlePage{
		layout:        layout{Title: a.Title},
		Article:       a,
		BodyHTML:      h.bodyHTML(r, a),
		IsAuthor:      id != 0 && a.Author.ID == id,
		Here:          articlePath(a.Slug),
		CommentsCount: comments.Count,
		OlderComments: before > 0,
	}
	for _, c := range comments.Comments {
		p.Comments = append(p.Comments, commentView{
			ID: c.ID, Body: c.Body, CreatedAt: c.CreatedAt, Author: c.Author,
			CanDelete: id != 0 && c.Author.ID == id,
		})
	}
	if comments.Next > 0 {
		p.MoreComments = p.Here + "?before=" + strconv.FormatInt(comments.Next, 10) + "#comments"
	}
	if !p.IsAuthor {
		if p.Meta, err = h.fragments.articleMeta(p); err != nil {
			return nil, fmt.Errorf("render article-meta: %w", err)
		}
	}
	return p, nil
}

// bodyHTML is the article's body as HTML. It is rendered once per version
// of the article: the first view renders it and stores it with the article
// and in the cache (also for the other nodes), later views take it from
// there. Concurrent
// first views on this node share one rendering. The stored HTML is trusted
// as the sanitizer's output: only SaveArticleHTML writes it, and a
// rendering by an older markdownVersion is not used.
func (h *handler) bodyHTML(r *http.Request, a conduit.Article) template.HTML {
	if html, ok := h.svc.ArticleHTML(r.Context(), a, markdownVersion); ok {
		return template.HTML(html)
	}
	key := strconv.FormatInt(a.ID, 10) + "@" + a.UpdatedAt.Format(time.RFC3339Nano)
	v, _, _ := h.renders.Do(key, func() (any, error) {
		html := h.markdown.Render(a.Body)
		// Kept even if this request goes away: others share the rendering.
		ctx := context.WithoutCancel(r.Context())
		if err := h.svc.SaveArticleHTML(ctx, a, string(html), markdownVersion); err != nil {
			// The page is still right; a later view stores it.
			h.logger.WarnContext(ctx, "store rendered article", slog.String("request_id", httpx.RequestID(ctx)),
				slog.Int64("article_id", a.ID), slog.Any("error", err))
		}
		return html, nil
	})
	return v.(template.HTML)
}

// commentsPerPage is how many comments the article page shows, newest
// first; a link leads to the older ones.
const commentsPerPage = 20

// olderThan reads ?before=, the id below which the article page lists
// comments; anything else is 0, the newest comments.
func olderThan(q url.Values) int64 {
	id, err := strconv.ParseInt(q.Get("before"), 10, 64)
	if err != nil || id < 0 {
		return 0
	}
	return id
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
	if h.refused(w, r, err, p, &p.Errors) {
		return
	}
	h.setFlash(w, r, "published")
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
	if h.refused(w, r, err, p, &p.Errors) {
		return
	}
	h.setFlash(w, r, "updated")
	redirect(w, r, articlePath(a.Slug))
}

func (h *handler) deleteArticle(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if err := h.svc.DeleteArticle(r.Context(), viewerID(r), slug); err != nil {
		h.fail(w, r, err)
		return
	}
	h.setFlash(w, r, "deleted")
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
	a, back, ok := runButton(h, w, r, "slug", articlePath, change)
	if !ok {
		return
	}
	if style := r.Header.Get(fragmentHeader); style == "long" || style == "short" {
		h.renderPartial(w, r, "favorite-button", favoriteButton{Article: a, Next: back, Long: style == "long"})
		return
	}
	redirect(w, r, back)
}

// previewID is the id of an article's preview in a list: the fragment a
// favorite button on a list comes back to, so the page opens where the
// reader was.
func previewID(slug string) string { return "article-" + slug }

// fragmentHeader asks a form for the new state of its button instead of a
// redirect: app.js sends it to update the button in place. Its value is the
// button's style (long on the article page, short in lists).
const fragmentHeader = "X-Conduit-Fragment"

// renderPartial answers with one partial template.
func (h *handler) renderPartial(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := h.views.partial(&buf, name, data); err != nil {
		h.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "private, no-store")
	_, _ = w.Write(buf.Bytes())
}

// runButton runs the use case of a favorite or follow button on the path
// value key, and says which page to go back to: the form's "next" field, or
// home(key). It is not ok when it has answered with an error.
func runButton[T any](h *handler, w http.ResponseWriter, r *http.Request, key string, home func(string) string,
	change func(ctx context.Context, viewerID int64, name string) (T, error)) (v T, back string, ok bool) {
	name := r.PathValue(key)
	if err := parseForm(w, r); err != nil {
		h.fail(w, r, err)
		return v, "", false
	}
	back = backTo(r, home(name))
	v, err := change(r.Context(), viewerID(r), name)
	if err != nil {
		h.fail(w, r, err)
		return v, "", false
	}
	return v, back, true
}

// backTo is the form's "next" field when it is a path on this site, else
// fallback.
func backTo(r *http.Request, fallback string) string {
	if next := r.PostForm.Get("next"); next != "" && safeNext(next) == next {
		return next
	}
	return fallback
}
