package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/media"
)

//go:embed templates
var templateFS embed.FS

// views holds one parsed template set per page: the layout and partials,
// plus that page's "content". Sets are parsed once at start; executing a
// parsed html/template is safe from many goroutines, so nothing is cloned
// per request.
type views struct {
	pages map[string]*template.Template
	// attr writes its data as a value of a quoted attribute (attrValue).
	attr *template.Template
}

// attrOpen and attrClose surround the value attr writes.
const attrOpen, attrClose = `<input value="`, `">`

// newViews parses the templates and checks that the declared pages and the
// page files match one to one, and that every page renders with its zero
// value, so a typo fails at start (and in every test), not on a user.
func newViews(a *assets, m *media.Media) (*views, error) {
	funcs := template.FuncMap{
		"asset":     a.URL,
		"avatar":    m.Image,
		"date":      func(t time.Time) string { return t.Format("January 2, 2006") },
		"isoDate":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"follow":    func(p conduit.Profile, next string) followButton { return followButton{Profile: p, Next: next} },
		"previewID": previewID,
		// formToken is a fresh one-time token for a form that changes
		// something (see once.go).
		"formToken": newFormToken,
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials/*.html")
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(templateFS, "templates/pages/*.html")
	if err != nil {
		return nil, err
	}
	declared := declaredPages()
	v := &views{pages: map[string]*template.Template{},
		attr: template.Must(template.New("attr").Parse(attrOpen + "{{.}}" + attrClose))}
	var errs []error
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if !slices.ContainsFunc(declared, func(p page) bool { return p.template() == name }) {
			errs = append(errs, fmt.Errorf("template %s has no page struct in declaredPages", f))
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		v.pages[name] = t
	}
	for _, p := range declared {
		if _, ok := v.pages[p.template()]; !ok {
			errs = append(errs, fmt.Errorf("page %s has no templates/pages/%s.html", p.template(), p.template()))
			continue
		}
		if err := v.execute(io.Discard, p); err != nil {
			errs = append(errs, err)
		}
	}
	return v, errors.Join(errs...)
}

// partial renders one partial template (for a part of a page replaced in
// place by app.js).
func (v *views) partial(w io.Writer, name string, data any) error {
	return v.pages[(&errorPage{}).template()].ExecuteTemplate(w, name, data)
}

// attrValue is s as the templates write it in a quoted attribute value
// such as the favorite button's "next" field, for a kept preview's hole
// (previews.go): the same escaper, from the same context.
func (v *views) attrValue(s string) (string, error) {
	var b strings.Builder
	if err := v.attr.Execute(&b, s); err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), attrOpen), attrClose), nil
}

func (v *views) execute(w io.Writer, p page) error {
	t, ok := v.pages[p.template()]
	if !ok {
		return fmt.Errorf("no template for page %s", p.template())
	}
	return t.ExecuteTemplate(w, "layout", p)
}

// render writes a page with status. It fills in the layout (the signed-in
// user for the navigation, asset URLs) and renders into a buffer first, so
// a template error becomes a clean 500 instead of half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, p page) {
	l := p.base()
	if u, ok := sessionUser(r); ok && l.Viewer == nil {
		l.Viewer = &viewer{Username: u.Username, Image: u.Image}
		// One bounded index range; a page still renders without it.
		l.Viewer.Unread, _ = h.svc.UnreadNotifications(r.Context(), u.ID)
	}
	l.Flash = h.takeFlash(w, r)
	buf := h.buffers.get()
	defer h.buffers.put(buf)
	if err := h.views.execute(buf, p); err != nil {
		httpx.LogError(r, http.StatusInternalServerError, fmt.Errorf("render %s: %w", p.template(), err))
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "Something went wrong on our side. Please try again in a moment.", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	httpx.AddVary(hd, "Cookie")
	// Signed-in pages differ per user (navigation, follow and favorite
	// state), other pages may echo form input: nobody keeps them (not even
	// the browser: a shared computer's back button after signing out). A
	// response that sets or clears a cookie, or shows a one-shot message,
	// is kept by none. Anonymous pages get the site's cache policy
	// (web.New): the same for everyone, so shared caches may keep them.
	if l.Viewer != nil || status != http.StatusOK || hd.Get("Set-Cookie") != "" || l.Flash != "" {
		hd.Set("Cache-Control", "private, no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers a request whose use case returned err: anonymous users go
// to the sign-in page, everything else gets an error page with a safe
// message. Server errors never show their cause; it goes to the log.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpx.Status(err)
	httpx.LogError(r, status, err)
	switch {
	case status == http.StatusUnauthorized:
		toLogin(w, r, "")
		return
	case status == 499:
		return // the client went away
	case status == http.StatusNotFound:
		msg = "We couldn't find that page."
	case status == http.StatusForbidden:
		msg = "You are not allowed to do that."
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
		msg = "The site is busy right now. Please try again in a moment."
	case status >= 500:
		msg = "Something went wrong on our side. Please try again in a moment."
	}
	h.renderStatus(w, r, status, msg)
}

// renderStatus shows the error page.
func (h *handler) renderStatus(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, &errorPage{
		layout:  layout{Title: http.StatusText(status)},
		Status:  status,
		Heading: http.StatusText(status),
		Message: msg,
	})
}

// notFound is the page for any address the site does not have.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, conduit.ErrNotFound)
}

// refused answers a form's use case error, if any, and reports whether it
// did: a refused input shows the form p again with the messages in *errs
// (422), any other error is the error page.
func (h *handler) refused(w http.ResponseWriter, r *http.Request, err error, p page, errs *[]string) bool {
	if msgs, ok := formErrors(err); ok {
		*errs = msgs
		h.render(w, r, http.StatusUnprocessableEntity, p)
		return true
	}
	if err != nil {
		h.fail(w, r, err)
		return true
	}
	return false
}

// formErrors turns a use case error into the lines of ul.error-messages,
// or returns false when err is not about the input.
func formErrors(err error) ([]string, bool) {
	var ve conduit.ValidationError
	if errors.As(err, &ve) {
		fields := make([]string, 0, len(ve))
		for f := range ve {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		var lines []string
		for _, f := range fields {
			label := f
			if f == "tagList" {
				label = "tags"
			}
			for _, m := range ve[f] {
				lines = append(lines, label+" "+m)
			}
		}
		return lines, true
	}
	if errors.Is(err, conduit.ErrInvalidCredentials) {
		return []string{"email or password is invalid"}, true
	}
	var te *conduit.ThrottledError
	if errors.As(err, &te) {
		return []string{te.Error()}, true
	}
	return nil, false
}

// buffers are the buffers pages are rendered into, used again: a page is
// 10-80 KB, and a buffer grown from empty for each page allocated and
// copied it about ten times over.
type buffers struct{ pool sync.Pool }

// maxBuffer is the largest buffer kept for the next page: a rare huge page
// does not stay in memory.
const maxBuffer = 1 << 20

func (b *buffers) get() *bytes.Buffer {
	if buf, ok := b.pool.Get().(*bytes.Buffer); ok {
		return buf
	}
	return new(bytes.Buffer)
}

func (b *buffers) put(buf *bytes.Buffer) {
	if buf.Cap() > maxBuffer {
		return
	}
	buf.Reset()
	b.pool.Put(buf)
}
