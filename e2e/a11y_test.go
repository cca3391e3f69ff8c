package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/web"
)

// axeEnv names the axe-core script the accessibility audit injects
// (.ci/run installs the npm package axe-core and sets it).
const axeEnv = "CONDUIT_AXE_JS"

// TestBrowserProduct drives Chromium through what issue 16 asked of the
// site, on both databases: every page audited by axe-core (no serious or
// critical violation), sign-in, publishing and commenting with the keyboard
// alone, favorite buttons that update in place (JavaScript) or come back
// to their list item (without), flash messages, and the 390-px phone
// layout (folded navigation, tags above the list, the article's buttons
// together, nothing wider than the screen). Screenshots go where
// TestBrowserEndToEnd puts them.
func TestBrowserProduct(t *testing.T) {
	needChromium(t)
	axe, err := os.ReadFile(os.Getenv(axeEnv))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s=%q: %v; CI must install the npm package axe-core", axeEnv, os.Getenv(axeEnv), err)
		}
		t.Skipf("no axe-core (set %s to axe.min.js of the npm package axe-core): %v", axeEnv, err)
	}
	shots := os.Getenv("CONDUIT_E2E_SCREENSHOTS")
	if shots == "" {
		if shots, err = os.MkdirTemp("", "conduit-product-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", shots)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		dir := filepath.Join(shots, "product-"+filepath.Base(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(site(t, db, web.Options{Forms: db}))
		t.Cleanup(srv.Close)

		b := openChrome(t, srv.URL, dir, true, 6*time.Minute)
		// axe-core goes into every page the tab loads, before its scripts.
		if _, err := chromedp.Call(b.ctx, cdppage.AddScriptToEvaluateOnNewDocument,
			cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: string(axe)}); err != nil {
			t.Fatal(err)
		}
		a := &audit{chrome: b}
		a.keyboardFlow()
		a.pages()
		a.favoriteInPlace()
		a.phone()
		b.reportProblems()

		// Without JavaScript a favorite button comes back to its item.
		nojs := openChrome(t, srv.URL, dir, false, 3*time.Minute)
		(&audit{chrome: nojs}).favoriteWithoutScript()
		nojs.reportProblems()
	})
}

// needChromium skips a browser test without Debian's Chromium (in CI,
// fails it), or in -short mode outside CI.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; CI must install the chromium package", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install chromium); skipping the browser test", chromiumPath)
	}
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("browser test skipped in -short mode")
	}
}

// openChrome starts a headless Chromium tab (with or without page scripts)
// on the site at base; everything it does must end within limit.
func openChrome(t *testing.T, base, shotDir string, js bool, limit time.Duration) *chrome {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	b := &chrome{t: t, ctx: ctx, base: base, shotDir: shotDir}
	if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, b.watch); err != nil {
		t.Fatal(err)
	}
	if !js {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
	}
	deadline, stop := context.WithTimeout(ctx, limit)
	t.Cleanup(stop)
	b.ctx = deadline
	return b
}

// reportProblems fails the test with what the tab saw go wrong.
func (b *chrome) reportProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Error(p)
	}
	b.problems = nil
}

// audit is one browser session of TestBrowserProduct.
type audit struct {
	*chrome
}

// keys types with the keyboard: text, kb.Tab, kb.Enter.
func (a *audit) keys(s string) {
	a.t.Helper()
	if err := chromedp.Do(a.ctx, chromedp.KeyEvent(s)); err != nil {
		a.t.Fatalf("keys %q: %v", s, err)
	}
}

// tabTo presses Tab until the focused element matches sel.
func (a *audit) tabTo(sel string) {
	a.t.Helper()
	for range 60 {
		a.keys(kb.Tab)
		if a.eval(`document.activeElement !== null && document.activeElement.matches(` + jsString(sel) + `)`) {
			return
		}
	}
	a.t.Fatalf("Tab never reached %s on %s (focus on %s)", sel, a.path(), a.evalString(`document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : "nothing"`))
}

// typeFields tabs to the field first and types values into it and the
// fields after it, moving on with Tab.
func (a *audit) typeFields(first string, values ...string) {
	a.t.Helper()
	a.tabTo(first)
	for i, v := range values {
		if i > 0 {
			a.keys(kb.Tab)
		}
		a.keys(v)
	}
}

// press presses Enter on the focused element and waits for the page it
// loads (on a path starting with want).
func (a *audit) press(want, shot string) {
	a.t.Helper()
	res, err := chromedp.RunResponse(a.ctx, chromedp.KeyEvent(kb.Enter))
	a.checkLoad("Enter", res, err, want)
	a.screenshot(shot)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// keyboardFlow signs up, signs out and in, publishes and comments with key
// presses alone, starting from the skip link.
func (a *audit) keyboardFlow() {
	a.visit("/", "")
	a.keys(kb.Tab)
	if !a.eval(`document.activeElement.matches("a.skip-link")`) {
		a.t.Errorf("the first Tab does not reach the skip link")
	}
	a.tabTo(`a.nav-link[href="/register"]`)
	a.press("/register", "")
	a.typeFields(`input[name=username]`, "keyboarder", "keyboarder@example.com", "keyboard-password")
	a.press("/", "kbd-signed-up")
	a.wantText(".flash", "Welcome to Conduit!")

	a.tabTo(`a.nav-link[href="/settings"]`)
	a.press("/settings", "")
	a.tabTo(`form[action="/logout"] button`)
	a.press("/", "")
	a.tabTo(`a.nav-link[href="/login"]`)
	a.press("/login", "")
	a.typeFields(`input[name=email]`, "keyboarder@example.com", "keyboard-password")
	a.press("/", "kbd-signed-in")
	a.wantText(`a.nav-link[href="/profile/keyboarder"]`, "keyboarder")

	a.tabTo(`a.nav-link[href="/editor"]`)
	a.press("/editor", "")
	a.typeFields(`input[name=title]`, "Typed with keys", "No mouse was used", "Tab, type, Enter.", "keyboard")
	a.tabTo(`form[action="/editor"] button[type=submit]`)
	a.press("/article/typed-with-keys", "kbd-published")
	a.wantText(".flash", "Your article is published.")

	a.typeFields(`textarea[name=body]`, "A comment typed with keys")
	a.tabTo(`form.comment-form button[type=submit]`)
	a.press("/article/typed-with-keys", "kbd-commented")
	a.wantText(".card.comment .card-text", "A comment typed with keys")
	a.wantText(".flash", "Your comment is posted.")
}

// axeResult is what the audit keeps of axe-core's answer.
type axeResult struct {
	ID, Impact, Help string
	Nodes            []string
}

// check runs axe-core on the current page and reports serious and critical
// violations.
func (a *audit) check(what string) {
	a.t.Helper()
	if !a.eval(`typeof axe !== "undefined"`) {
		a.t.Fatalf("axe-core is not in %s", what)
	}
	out, err := chromedp.Run(a.ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(
		r.violations.map(v => ({ID: v.id, Impact: v.impact || "", Help: v.help, Nodes: v.nodes.map(n => n.target.join(" "))}))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		a.t.Fatalf("axe on %s: %v", what, err)
	}
	var vs []axeResult
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		a.t.Fatalf("axe on %s: %v", what, err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			a.t.Errorf("axe on %s: %s (%s): %s at %v", what, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			a.t.Logf("axe on %s (not failing): %s (%s) at %v", what, v.ID, v.Impact, v.Nodes)
		}
	}
}

// pages audits every kind of page, signed in and out, wide and narrow.
func (a *audit) pages() {
	signedIn := []string{"/", "/?feed=following", "/?tag=keyboard", "/article/typed-with-keys", "/editor",
		"/settings", "/profile/keyboarder", "/search?q=keys"}
	for _, p := range signedIn {
		a.visit(p, "")
		a.check("signed in " + p)
	}
	// Error pages answer 404; audit them without the status check.
	for _, p := range []string{"/no/such/page", "/?page=40"} {
		if _, err := chromedp.RunResponse(a.ctx, chromedp.Navigate(a.base+p)); err != nil {
			a.t.Fatal(err)
		}
		a.check("signed in " + p)
	}
	a.forgetHTTPErrors()
	a.visit("/settings", "")
	a.tabTo(`form[action="/logout"] button`)
	a.press("/", "")
	for _, p := range []string{"/", "/login", "/register", "/article/typed-with-keys", "/profile/keyboarder", "/search?q=keys"} {
		a.visit(p, "")
		a.check("anonymous " + p)
	}
	a.phoneSize(true)
	for _, p := range []string{"/", "/article/typed-with-keys"} {
		a.visit(p, "")
		a.check("phone " + p)
	}
	a.phoneSize(false)
}

// forgetHTTPErrors drops the 404s the error pages were asked for.
func (a *audit) forgetHTTPErrors() {
	a.mu.Lock()
	defer a.mu.Unlock()
	kept := a.problems[:0]
	for _, p := range a.problems {
		if !strings.HasPrefix(p, "HTTP 404 ") && !strings.Contains(p, "404 (Not Found)") {
			kept = append(kept, p)
		}
	}
	a.problems = kept
}

func (a *audit) phoneSize(on bool) {
	a.t.Helper()
	var err error
	if on {
		err = chromedp.Do(a.ctx, chromedp.EmulateViewport(390, 844))
	} else {
		err = chromedp.Do(a.ctx, chromedp.EmulateViewport(1280, 900))
	}
	if err != nil {
		a.t.Fatal(err)
	}
}

// signIn signs in as keyboarder through the form.
func (a *audit) signIn() {
	a.visit("/login", "")
	a.fill(`input[name=email]`, "keyboarder@example.com")
	a.fill(`input[name=password]`, "keyboard-password")
	a.click(`form[action="/login"] button[type=submit]`, "/", "")
}

// favoriteInPlace: with JavaScript, the button changes without a new page.
func (a *audit) favoriteInPlace() {
	a.signIn()
	a.visit("/", "")
	a.eval(`(window.samePage = true)`)
	if _, err := chromedp.Run(a.ctx, chromedp.Click(chromedp.CSS(`#article-typed-with-keys form[action$="/favorite"] button`), chromedp.NodeVisible)); err != nil {
		a.t.Fatal(err)
	}
	if _, err := chromedp.Run(a.ctx, chromedp.WaitVisible(chromedp.CSS(`#article-typed-with-keys form[action$="/unfavorite"] button`))); err != nil {
		a.t.Fatalf("the favorite button did not change: %v", err)
	}
	if !a.eval(`window.samePage === true`) {
		a.t.Errorf("favoriting loaded a new page")
	}
	a.wantText(`#article-typed-with-keys form[action$="/unfavorite"] button`, "1")
	if !a.eval(`document.activeElement.matches('#article-typed-with-keys form[action$="/unfavorite"] button')`) {
		a.t.Errorf("focus did not stay on the button")
	}
	a.screenshot("favorited-in-place")
}

// favoriteWithoutScript: the form posts, and the list comes back at the item.
func (a *audit) favoriteWithoutScript() {
	a.signIn()
	a.visit("/?tag=keyboard", "")
	a.click(`#article-typed-with-keys form[action$="/unfavorite"] button`, "/?tag=keyboard", "unfavorited-no-js")
	loc, err := chromedp.Run(a.ctx, chromedp.Location())
	if err != nil {
		a.t.Fatal(err)
	}
	if u, _ := url.Parse(loc); u == nil || u.Fragment != "article-typed-with-keys" {
		a.t.Errorf("after favoriting from a list: %s, want the item's fragment", loc)
	}
}

// phone checks the 390-px layout.
func (a *audit) phone() {
	a.phoneSize(true)
	defer a.phoneSize(false)
	for _, p := range []string{"/", "/?page=1", "/article/typed-with-keys", "/profile/keyboarder", "/search?q=keys", "/editor", "/settings"} {
		a.visit(p, "")
		if !a.eval(`document.documentElement.scrollWidth <= window.innerWidth`) {
			a.t.Errorf("%s scrolls sideways on a phone", p)
		}
	}
	a.visit("/", "phone-home")
	// One line of navigation: brand, search and the Menu button.
	if !a.eval(`(() => { const r = s => document.querySelector(s).getBoundingClientRect();
		return Math.abs(r(".navbar-brand").top - r(".nav-menu > summary").top) < 12 && r(".navbar").height < 70 })()`) {
		a.t.Errorf("the navigation does not fit one line at 390 px")
	}
	if a.eval(`document.querySelector('a.nav-link[href="/editor"]').checkVisibility()`) {
		a.t.Errorf("the menu's links show before it is opened")
	}
	if _, err := chromedp.Run(a.ctx, chromedp.Click(chromedp.CSS(".nav-menu > summary"), chromedp.NodeVisible)); err != nil {
		a.t.Fatal(err)
	}
	if _, err := chromedp.Run(a.ctx, chromedp.WaitVisible(chromedp.CSS(`a.nav-link[href="/editor"]`))); err != nil {
		a.t.Errorf("the menu does not open: %v", err)
	}
	a.screenshot("phone-menu-open")
	// Popular tags come before the list.
	if !a.eval(`document.querySelector(".sidebar").getBoundingClientRect().top < document.querySelector(".article-preview").getBoundingClientRect().top`) {
		a.t.Errorf("popular tags are below the list on a phone")
	}
	// The author's Edit and Delete buttons share a line.
	a.visit("/article/typed-with-keys", "phone-article-author")
	if !a.eval(`(() => { const m = document.querySelector(".banner .meta-actions");
		const e = m.querySelector("a.btn").getBoundingClientRect(), d = m.querySelector("button").getBoundingClientRect();
		return Math.abs(e.top - d.top) < 4 })()`) {
		a.t.Errorf("Delete Article is not beside Edit Article on a phone")
	}
}
