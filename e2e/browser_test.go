package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/web"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// chromiumPath is Debian's chromium package, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// TestBrowserEndToEnd drives a real headless Chromium through the whole
// site, once with JavaScript and once without: sign up, write an article
// with tags, see it on the home page, comment, sign up a second user,
// follow and favorite, see the article in Your Feed, change settings, sign
// out and sign in. Any console error, failed load or request to another
// host fails the test. Screenshots of every page go to a temp dir (or to
// $CONDUIT_E2E_SCREENSHOTS).
func TestBrowserEndToEnd(t *testing.T) {
	needChromium(t)
	shots := os.Getenv("CONDUIT_E2E_SCREENSHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "conduit-e2e-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", shots)

	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, js := range []bool{true, false} {
			name := "javascript"
			if !js {
				name = "no-javascript"
			}
			t.Run(name, func(t *testing.T) {
				dir := filepath.Join(shots, filepath.Base(filepath.Dir(t.Name())), name)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				// Each run gets its own users: the database is shared by
				// both runs of one backend.
				runBrowserFlow(t, db, js, dir, strings.ReplaceAll(name, "-", ""))
			})
		}
	})
}

func runBrowserFlow(t *testing.T, db *store.DB, js bool, shotDir, suffix string) {
	srv := httptest.NewServer(site(t, db, web.Options{}))
	t.Cleanup(srv.Close)

	b := openChrome(t, srv.URL, shotDir, js, 90*time.Second) // e2e_a11y_test.go

	alice, bob := "alice"+suffix, "bob"+suffix
	title := "Testing in a real browser " + suffix

	b.visit("/", "home")
	if got := b.eval(`document.documentElement.classList.contains("js")`); got != js {
		t.Errorf("our script ran: %v, want %v", got, js)
	}
	if got := b.text(".home-page .banner h1"); got != "conduit" {
		t.Errorf("banner %q", got)
	}
	if bg := b.evalString(`getComputedStyle(document.querySelector(".home-page .banner")).backgroundColor`); bg != "rgb(47, 122, 47)" { // --brand in app.css
		t.Errorf("banner colour %q: the stylesheet did not apply", bg)
	}

	// Sign up.
	b.click(`a.nav-link[href="/register"]`, "/register", "register")
	b.fill(`input[name=username]`, alice)
	b.fill(`input[name=email]`, alice+"@example.com")
	b.fill(`input[name=password]`, "alice-password")
	b.click(`form[action="/register"] button[type=submit]`, "/", "")
	b.wantText(`a.nav-link[href="/profile/`+alice+`"]`, alice)

	// Write an article with tags.
	b.click(`a.nav-link[href="/editor"]`, "/editor", "editor")
	b.fill(`input[name=title]`, title)
	b.fill(`input[name=description]`, "Chromium clicks every button")
	b.fill(`textarea[name=body]`, "## It works\n\nEven **without** JavaScript.")
	b.fill(`input[name=tags]`, "browsers, e2e")
	b.click(`form[action="/editor"] button[type=submit]`, "/article/", "article")
	b.wantText(".article-page .banner h1", title)
	b.wantText(".article-body h2", "It works")
	b.wantText(".article-body strong", "without")
	b.wantText(".article-content .tag-list", "browsers")
	b.wantText(".article-content .tag-list", "e2e")
	articlePath := b.path()

	// See it on the home page.
	b.click(`a.nav-link[href="/"]`, "/", "home-with-article")
	b.wantText(".article-preview h2", title)
	b.wantText(".sidebar .tag-list", "e2e")

	// Comment.
	b.visit(articlePath, "")
	b.fill(`textarea[name=body]`, "First comment from "+alice)
	b.click(`form.comment-form button[type=submit]`, articlePath, "comment")
	b.wantText(".card.comment .card-text", "First comment from "+alice)

	// Sign out (the button posts).
	b.click(`a.nav-link[href="/settings"]`, "/settings", "settings-"+alice)
	b.click(`form[action="/logout"] button`, "/", "")
	b.wantText(`a.nav-link[href="/login"]`, "Sign in")

	// A second user follows and favorites.
	b.visit("/register", "")
	b.fill(`input[name=username]`, bob)
	b.fill(`input[name=email]`, bob+"@example.com")
	b.fill(`input[name=password]`, "bob-password")
	b.click(`form[action="/register"] button[type=submit]`, "/", "")
	b.click(`.article-preview a.author[href="/profile/`+alice+`"]`, "/profile/"+alice, "profile-"+alice)
	b.click(`form[action="/profile/`+alice+`/follow"] button`, "/profile/"+alice, "followed")
	b.wantText(`form[action="/profile/`+alice+`/unfollow"] button`, "Unfollow "+alice)
	b.visit(articlePath, "")
	b.click(`.banner form[action$="/favorite"] button`, articlePath, "favorited")
	b.wantText(`.banner form[action$="/unfavorite"] button`, "Unfavorite Article (1)")

	// Your Feed has the followed author's article.
	b.visit("/", "")
	b.click(`.feed-toggle a[href="/?feed=following"]`, "/", "your-feed")
	b.wantText(".feed-toggle .nav-link.active", "Your Feed")
	b.wantText(".article-preview h2", title)
	b.wantText(".article-preview button.btn-primary", "1")

	// Change settings.
	b.click(`a.nav-link[href="/settings"]`, "/settings", "")
	b.fill(`textarea[name=bio]`, "I follow "+alice)
	b.click(`form[action="/settings"] button[type=submit]`, "/profile/"+bob, "profile-"+bob)
	b.wantText(".user-info p", "I follow "+alice)
	b.click(`.articles-toggle a[href="/profile/`+bob+`/favorites"]`, "/profile/"+bob+"/favorites", "favorites-"+bob)
	b.wantText(".article-preview h2", title)

	// Sign out and in again.
	b.click(`a.nav-link[href="/settings"]`, "/settings", "")
	b.click(`form[action="/logout"] button`, "/", "signed-out")
	b.click(`a.nav-link[href="/login"]`, "/login", "login")
	b.fill(`input[name=email]`, bob+"@example.com")
	b.fill(`input[name=password]`, "bob-password")
	b.click(`form[action="/login"] button[type=submit]`, "/", "signed-in")
	b.wantText(`a.nav-link[href="/profile/`+bob+`"]`, bob)

	// On a phone-sized screen the pages fit the width.
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", articlePath, "/profile/" + alice} {
		b.visit(p, "phone")
		if !b.eval(`document.documentElement.scrollWidth <= window.innerWidth`) {
			t.Errorf("%s scrolls sideways on a phone", p)
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Error(p)
	}
}

// site is the HTML site on db as cmd/conduit wires it, logging requests
// to the test log.
func site(t *testing.T, db *store.DB, opts web.Options) http.Handler {
	tokens, err := auth.NewTokens([]auth.Key{{ID: "test", Secret: []byte(strings.Repeat("k", 32))}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svc := conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	return httpx.Chain(web.New(svc, tokens, logger, opts), httpx.Log(logger, nil))
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// chrome is one browser tab and what it has seen go wrong.
type chrome struct {
	t       *testing.T
	ctx     context.Context
	base    string
	shotDir string
	shots   int

	mu       sync.Mutex
	problems []string
}

// watch records console errors, exceptions, failed loads, error
// responses and requests to other hosts. It runs on chromedp's reader
// goroutine, so it only appends under a lock.
func (b *chrome) watch(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			p = fmt.Sprintf("console.%s: %v", ev.Type, consoleArgs(ev.Args))
		}
	case *runtime.EventExceptionThrown:
		p = "uncaught exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			p += " " + ev.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError {
			p = fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *network.EventLoadingFailed:
		if !ev.Canceled {
			p = fmt.Sprintf("failed load (%s): %s %s", ev.Type, ev.ErrorText, ev.BlockedReason)
		}
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			p = fmt.Sprintf("HTTP %d for %s", ev.Response.Status, ev.Response.URL)
		}
	case *network.EventRequestWillBeSent:
		if u, err := url.Parse(ev.Request.URL); err != nil || (u.Scheme != "data" && "http://"+u.Host != b.base) {
			p = "request to another host: " + ev.Request.URL
		}
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

func consoleArgs(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		if len(a.Value) > 0 {
			parts = append(parts, string(a.Value))
		} else {
			parts = append(parts, a.Description)
		}
	}
	return strings.Join(parts, " ")
}

// visit loads a path and takes a screenshot when shot is not empty.
func (b *chrome) visit(path, shot string) {
	b.t.Helper()
	res, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(b.base+path))
	b.checkLoad("visit "+path, res, err, path)
	b.screenshot(shot)
}

// click clicks an element that loads a new page, waits for it, checks it
// landed on a path starting with wantPath with status 200, and takes a
// screenshot when shot is not empty.
func (b *chrome) click(sel, wantPath, shot string) {
	b.t.Helper()
	res, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	b.checkLoad("click "+sel, res, err, wantPath)
	b.screenshot(shot)
}

func (b *chrome) checkLoad(what string, res *network.Response, err error, wantPath string) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	if res == nil || res.Status != http.StatusOK {
		b.t.Fatalf("%s: response %+v", what, res)
	}
	if got := b.path(); !strings.HasPrefix(got, wantPath) {
		b.t.Fatalf("%s: landed on %s, want %s", what, got, wantPath)
	}
}

// path is the current path and query.
func (b *chrome) path() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	return u.RequestURI()
}

// fill types text into an empty field.
func (b *chrome) fill(sel, text string) {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil || v != "" {
		b.t.Fatalf("fill %s: field holds %q (%v)", sel, v, err)
	}
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		b.t.Fatalf("fill %s: %v", sel, err)
	}
}

func (b *chrome) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *chrome) wantText(sel, want string) {
	b.t.Helper()
	got := strings.Join(strings.Fields(b.text(sel)), " ")
	if !strings.Contains(got, want) {
		b.t.Errorf("%s on %s: text %q, want %q", sel, b.path(), got, want)
	}
}

// eval runs a DevTools expression (it works with page scripts disabled).
func (b *chrome) eval(expr string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.EvaluateAsDevTools[bool](expr))
	if err != nil {
		b.t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

func (b *chrome) evalString(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.EvaluateAsDevTools[string](expr))
	if err != nil {
		b.t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

func (b *chrome) screenshot(name string) {
	b.t.Helper()
	if name == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	b.shots++
	file := filepath.Join(b.shotDir, fmt.Sprintf("%02d-%s.png", b.shots, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
