// Package e2e holds the browser end-to-end test (browser_test.go): a real
// headless Chromium, driven through chromedp, signs up, writes, comments,
// follows and favorites on the HTML site, with and without JavaScript, on
// both databases. It is a module of its own so that chromedp and its
// DevTools protocol bindings stay out of Conduit's go.mod; the replace
// directive builds it against the Conduit source next to it. Run it with
//
//	cd e2e && go test ./...
//
// It needs Debian's chromium (/usr/bin/chromium); without it the test
// skips, or fails when CI=true.
package e2e
