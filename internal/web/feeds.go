package web

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// Atom feeds (RFC 4287; an extension, docs/openapi-extensions.yml) of the
// newest articles: of everyone (/feed.atom), of a tag (/feed.atom?tag=go)
// and of one author (/profile/{username}/feed.atom). The list pages
// announce them with <link rel="alternate">. They are built from the same
// anonymous lists as those pages and kept in the same page cache.

// feedEntries is how many articles a feed carries.
const feedEntries = 20

// feedLink is a feed announced in a page's head.
type feedLink struct {
	Title, URL string
}

func globalFeed() *feedLink { return &feedLink{Title: "Conduit: newest articles", URL: "/feed.atom"} }

func tagFeed(tag string) *feedLink {
	return &feedLink{Title: "Conduit: articles tagged " + tag, URL: "/feed.atom?" + url.Values{"tag": {tag}}.Encode()}
}

func authorFeed(username string) *feedLink {
	return &feedLink{Title: "Conduit: articles by " + username, URL: profilePath(username) + "/feed.atom"}
}

// The Atom document, as encoding/xml writes it.
type (
	atomFeed struct {
		XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
		ID      string      `xml:"id"`
		Title   string      `xml:"title"`
		Updated string      `xml:"updated"`
		Links   []atomLink  `xml:"link"`
		Author  atomPerson  `xml:"author"`
		Entries []atomEntry `xml:"entry"`
	}
	atomLink struct {
		Rel  string `xml:"rel,attr"`
		Type string `xml:"type,attr,omitempty"`
		Href string `xml:"href,attr"`
	}
	atomPerson struct {
		Name string `xml:"name"`
		URI  string `xml:"uri,omitempty"`
	}
	atomText struct {
		Type string `xml:"type,attr"`
		Body string `xml:",chardata"`
	}
	atomCategory struct {
		Term string `xml:"term,attr"`
	}
	atomEntry struct {
		ID         string         `xml:"id"`
		Title      string         `xml:"title"`
		Updated    string         `xml:"updated"`
		Published  string         `xml:"published"`
		Link       atomLink       `xml:"link"`
		Author     atomPerson     `xml:"author"`
		Summary    atomText       `xml:"summary"`
		Content    atomText       `xml:"content"`
		Categories []atomCategory `xml:"category"`
	}
)

func atomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// feed serves the global feed, or a tag's with ?tag=.
func (h *handler) feed(w http.ResponseWriter, r *http.Request) {
	tag := r.URL.Query().Get("tag")
	f := conduit.ArticleFilter{Tag: tag, Limit: feedEntries}
	link, page := globalFeed(), "/"
	if tag != "" {
		link, page = tagFeed(tag), "/?"+url.Values{"tag": {tag}}.Encode()
	}
	h.serveFeed(w, r, f, link, page)
}

// authorFeed serves one author's feed.
func (h *handler) authorFeed(w http.ResponseWriter, r *http.Request) {
	prof, err := h.svc.Profile(r.Context(), 0, r.PathValue("username"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.serveFeed(w, r, conduit.ArticleFilter{Author: prof.Username, Limit: feedEntries}, authorFeed(prof.Username), profilePath(prof.Username))
}

// serveFeed writes the feed of the list f, whose HTML page is at page.
// Entries carry the whole article, rendered as on its page; ids are tag
// URIs made from the article's id, so they survive title (slug) changes.
func (h *handler) serveFeed(w http.ResponseWriter, r *http.Request, f conduit.ArticleFilter, link *feedLink, page string) {
	list, err := h.svc.Articles(r.Context(), 0, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	base := h.opts.Media.BaseURL(r)
	host := r.Host
	if u, err := url.Parse(base); err == nil {
		host = u.Hostname()
	}
	doc := atomFeed{
		ID:      base + link.URL,
		Title:   link.Title,
		Updated: atomTime(time.Unix(0, 0)),
		Links: []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: base + link.URL},
			{Rel: "alternate", Type: "text/html", Href: base + page},
		},
		Author: atomPerson{Name: "Conduit"},
	}
	for _, a := range list.Articles {
		// Lists leave bodies out; a feed reader shows the whole article.
		full, err := h.svc.Article(r.Context(), 0, a.Slug)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if u := atomTime(full.UpdatedAt); u > doc.Updated {
			doc.Updated = u
		}
		e := atomEntry{
			ID:        fmt.Sprintf("tag:%s,%s:article:%s", host, full.CreatedAt.UTC().Format("2006-01-02"), strconv.FormatInt(full.ID, 10)),
			Title:     full.Title,
			Updated:   atomTime(full.UpdatedAt),
			Published: atomTime(full.CreatedAt),
			Link:      atomLink{Rel: "alternate", Type: "text/html", Href: base + articlePath(full.Slug)},
			Author:    atomPerson{Name: full.Author.Username, URI: base + profilePath(full.Author.Username)},
			Summary:   atomText{Type: "text", Body: full.Description},
			Content:   atomText{Type: "html", Body: string(h.markdown.Render(full.Body))},
		}
		for _, t := range full.Tags {
			e.Categories = append(e.Categories, atomCategory{Term: t})
		}
		doc.Entries = append(doc.Entries, e)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	if err := enc.Encode(doc); err != nil {
		h.fail(w, r, fmt.Errorf("encode feed: %w", err))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/atom+xml; charset=utf-8")
	hd.Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(buf.Bytes())
}
