package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/edge"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
	"github.com/conduit-dev/conduit/internal/varnishtest"
	"github.com/conduit-dev/conduit/internal/web"
)

// edgeBound is the stated bound (docs/stage6.md) on how long an anonymous
// reader at the edge may get a page from before a write.
const edgeBound = 3 * time.Second

// TestBrowserThroughVarnish drives three Chromium profiles (alice, bob and
// an anonymous reader) through Varnish, loaded with the shipped VCL, in
// front of the site with purge on write: signed-in users always see their
// own navigation and their own writes at once, never someone else's page;
// the anonymous reader gets cached pages that show each write within the
// bound. Any console error, failed load, error status or request to
// another host fails it, as in TestBrowserEndToEnd.
func TestBrowserThroughVarnish(t *testing.T) {
	needChromium(t)
	varnishtest.Binary(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		edgePort := testproc.FreePort(t)
		pub, err := edge.New(edge.Options{URLs: []string{fmt.Sprintf("http://127.0.0.1:%d/", edgePort)}, FlushKey: conduit.KeySite})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { pub.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		tokens, err := auth.NewTokens([]auth.Key{{ID: "test", Secret: []byte(strings.Repeat("k", 32))}}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		svc := conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4}, conduit.WithPurger(pub))
		caching := httpx.DefaultCaching()
		caching.SurrogateKeys = true
		logger := slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
		site := web.New(svc, tokens, logger, web.Options{Caching: caching})
		// Varnish probes /readyz (the server's, outside the site).
		mux := http.NewServeMux()
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
		mux.Handle("/", site)
		srv := httptest.NewServer(httpx.Chain(mux, httpx.Log(logger, nil)))
		t.Cleanup(srv.Close)
		v := varnishtest.Start(t, srv.Listener.Addr().String(), edgePort)
		runThroughVarnish(t, v.URL)
	})
}

func runThroughVarnish(t *testing.T, base string) {
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if _, err := chromedp.Run(browserCtx, chromedp.Title()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	deadline, stop := context.WithTimeout(browserCtx, 120*time.Second)
	defer stop()
	// Each visitor has a browser profile of its own (its own cookies).
	visitor := func() *chrome {
		ctx, cancel := chromedp.NewContext(deadline, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		b := &chrome{t: t, ctx: ctx, base: base}
		if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Listen(ctx, b.watch); err != nil {
			t.Fatal(err)
		}
		return b
	}
	alice, bob, anon := visitor(), visitor(), visitor()

	anon.visit("/", "")
	anon.visit("/", "") // now from the edge
	signUp := func(b *chrome, name string) {
		b.visit("/register", "")
		b.fill(`input[name=username]`, name)
		b.fill(`input[name=email]`, name+"@example.com")
		b.fill(`input[name=password]`, name+"-password")
		b.click(`form[action="/register"] button[type=submit]`, "/", "")
		b.wantText(`a.nav-link[href="/profile/`+name+`"]`, name)
	}
	signUp(alice, "alice")
	signUp(bob, "bob")

	// Alice's write is on her own pages at once.
	alice.click(`a.nav-link[href="/editor"]`, "/editor", "")
	alice.fill(`input[name=title]`, "Through the edge")
	alice.fill(`input[name=description]`, "Varnish in front")
	alice.fill(`textarea[name=body]`, "Cached for readers, fresh for writers.")
	alice.fill(`input[name=tags]`, "edge")
	alice.click(`form[action="/editor"] button[type=submit]`, "/article/", "")
	articlePath := alice.path()
	alice.visit("/", "")
	alice.wantText(".article-preview h2", "Through the edge")
	alice.wantText(`a.nav-link[href="/profile/alice"]`, "alice")

	// The anonymous reader sees it within the bound, still anonymous.
	anonSees(t, anon, "/", ".article-preview h2", "Through the edge")
	if anon.eval(`document.querySelector('a.nav-link[href="/settings"]') !== null`) {
		t.Error("the anonymous reader got a signed-in page")
	}

	// Bob favorites it and sees his own count at once, under his own name.
	bob.visit(articlePath, "")
	bob.click(`.banner form[action$="/favorite"] button`, articlePath, "")
	bob.wantText(`.banner form[action$="/unfavorite"] button`, "Unfavorite Article (1)")
	bob.wantText(`a.nav-link[href="/profile/bob"]`, "bob")
	if bob.eval(`document.querySelector('a.nav-link[href="/profile/alice"]') !== null`) {
		t.Error("bob got alice's navigation")
	}
	alice.visit("/", "")
	alice.wantText(`.article-preview form[action$="/favorite"] button`, "1")
	alice.wantText(`a.nav-link[href="/profile/alice"]`, "alice")
	anonSees(t, anon, articlePath, `.banner form[action$="/favorite"] button`, "(1)")

	// Signing out gives the shared anonymous page, not alice's.
	alice.click(`a.nav-link[href="/settings"]`, "/settings", "")
	alice.click(`form[action="/logout"] button`, "/", "")
	alice.wantText(`a.nav-link[href="/login"]`, "Sign in")

	for _, b := range []*chrome{alice, bob, anon} {
		b.mu.Lock()
		for _, p := range b.problems {
			t.Error(p)
		}
		b.mu.Unlock()
	}
}

// anonSees reloads path until sel shows want, within edgeBound.
func anonSees(t *testing.T, b *chrome, path, sel, want string) {
	t.Helper()
	start := time.Now()
	for {
		b.visit(path, "")
		// Not b.text: it would wait for an element the stale page lacks.
		got := b.evalString(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel))
		if strings.Contains(strings.Join(strings.Fields(got), " "), want) {
			t.Logf("anonymous reader saw %q on %s within %v of looking", want, path, time.Since(start))
			return
		}
		if time.Since(start) > edgeBound {
			t.Fatalf("anonymous reader still without %q on %s after %v", want, path, edgeBound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
