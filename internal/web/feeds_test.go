package web

import (
	"encoding/xml"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// parsedFeed is what the RFC 4287 checks below read back.
type parsedFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"id"`
	Title   string   `xml:"title"`
	Updated string   `xml:"updated"`
	Links   []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"link"`
	Author *struct {
		Name string `xml:"name"`
	} `xml:"author"`
	Entries []struct {
		ID        string `xml:"id"`
		Title     string `xml:"title"`
		Updated   string `xml:"updated"`
		Published string `xml:"published"`
		Link      struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"link"`
		Author struct {
			Name string `xml:"name"`
			URI  string `xml:"uri"`
		} `xml:"author"`
		Content struct {
			Type string `xml:"type,attr"`
			Body string `xml:",chardata"`
		} `xml:"content"`
		Categories []struct {
			Term string `xml:"term,attr"`
		} `xml:"category"`
	} `xml:"entry"`
}

// checkAtom asserts the RFC 4287 rules a feed of ours must meet: the Atom
// namespace; feed id, title, updated (RFC 3339), a self link and an author;
// each entry's id, title, updated, alternate link and author.
func checkAtom(t *testing.T, body string) parsedFeed {
	t.Helper()
	var f parsedFeed
	if err := xml.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("feed is not Atom XML: %v\n%s", err, body)
	}
	isTime := func(s string) bool { _, err := time.Parse(time.RFC3339, s); return err == nil }
	if f.ID == "" || f.Title == "" || !isTime(f.Updated) || f.Author == nil || f.Author.Name == "" {
		t.Errorf("feed head incomplete: %+v", f)
	}
	self := false
	for _, l := range f.Links {
		self = self || (l.Rel == "self" && strings.HasPrefix(l.Href, "http"))
	}
	if !self {
		t.Errorf("no absolute self link: %+v", f.Links)
	}
	ids := map[string]bool{}
	for _, e := range f.Entries {
		if !strings.HasPrefix(e.ID, "tag:") || ids[e.ID] || e.Title == "" || !isTime(e.Updated) || !isTime(e.Published) ||
			e.Link.Rel != "alternate" || !strings.HasPrefix(e.Link.Href, "http") || e.Author.Name == "" {
			t.Errorf("entry incomplete or repeated: %+v", e)
		}
		ids[e.ID] = true
	}
	return f
}

var alternateRE = regexp.MustCompile(`<link rel="alternate" type="application/atom\+xml" title="[^"]+" href="([^"]+)">`)

// The global, tag and author feeds are announced on their pages and are
// valid Atom with the articles, rendered and escaped.
func TestAtomFeeds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		alice := s.browser().signUp("alice")
		alice.publish("Fish & <chips>", "food")
		alice.publish("Second", "other")
		anon := s.browser()
		for page, want := range map[string]string{"/": "/feed.atom", "/?tag=food": "/feed.atom?tag=food", "/profile/alice": "/profile/alice/feed.atom"} {
			m := alternateRE.FindStringSubmatch(anon.get(page).Body)
			if m == nil || m[1] != want {
				t.Fatalf("%s announces %v, want %s", page, m, want)
			}
			res := anon.get(want)
			wantStatus(t, res, http.StatusOK)
			if ct := res.Header.Get("Content-Type"); ct != "application/atom+xml; charset=utf-8" {
				t.Errorf("%s: Content-Type %q", want, ct)
			}
			f := checkAtom(t, res.Body)
			wantN := map[string]int{"/feed.atom": 2, "/feed.atom?tag=food": 1, "/profile/alice/feed.atom": 2}[want]
			if len(f.Entries) != wantN {
				t.Errorf("%s: %d entries, want %d", want, len(f.Entries), wantN)
			}
		}
		f := checkAtom(t, anon.get("/feed.atom?tag=food").Body)
		e := f.Entries[0]
		if e.Title != "Fish & <chips>" || e.Content.Type != "html" || !strings.Contains(e.Content.Body, "<em>Fish &amp; </em>") ||
			len(e.Categories) != 1 || e.Categories[0].Term != "food" {
			t.Errorf("entry = %+v", e)
		}
		wantStatus(t, anon.get("/profile/nobody/feed.atom"), http.StatusNotFound)
	})
}
