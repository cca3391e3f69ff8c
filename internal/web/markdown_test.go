package web

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"
)

// xssPayloads are classic ways to sneak script into Markdown or HTML.
var xssPayloads = []string{
	`<script>alert(1)</script>`,
	`<SCRIPT SRC=//evil.example/x.js></SCRIPT>`,
	"para\n\n<script>\nalert(1)\n</script>",
	`<img src=x onerror=alert(1)>`,
	`<img src="x" ONERROR="alert(1)">`,
	`<svg onload=alert(1)>`,
	`<svg><script>alert(1)</script></svg>`,
	`<body onload=alert(1)>`,
	`<iframe src="javascript:alert(1)"></iframe>`,
	`<object data="javascript:alert(1)"></object>`,
	`<embed src="javascript:alert(1)">`,
	`<a href="javascript:alert(1)">x</a>`,
	`<a href="JaVaScRiPt:alert(1)">x</a>`,
	`<a href="jav&#x09;ascript:alert(1)">x</a>`,
	`<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>`,
	`[click](javascript:alert(1))`,
	`[click](JAVASCRIPT:alert(1))`,
	`[click](  javascript:alert(1)  )`,
	`[click](jav&#x61;script:alert(1))`,
	`[click](vbscript:msgbox(1))`,
	`[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)`,
	`![img](javascript:alert(1))`,
	`![img](x" onerror="alert(1))`,
	`[ref]: javascript:alert(1)` + "\n\n[ref]",
	`<https://example.com/" onmouseover="alert(1)>`,
	`<div style="background:url(javascript:alert(1))">x</div>`,
	`<style>body{background:red}</style>`,
	`<form action="javascript:alert(1)"><button>x</button></form>`,
	`<math><mi xlink:href="javascript:alert(1)">x</mi></math>`,
	`<details open ontoggle=alert(1)>`,
	`<meta http-equiv="refresh" content="0;url=javascript:alert(1)">`,
	`<base href="javascript:alert(1)//">`,
	`<link rel=stylesheet href=javascript:alert(1)>`,
	"```html\n<script>alert(1)</script>\n```",
	"`<script>alert(1)</script>`",
	`<a href="https://ok.example" onclick="alert(1)">ok</a>`,
	`<p title="</p><script>alert(1)</script>">x</p>`,
	`<!--<img src="--><img src=x onerror=alert(1)//">`,
	`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`,
}

var (
	scriptTagRE = regexp.MustCompile(`(?i)<\s*(script|iframe|object|embed|style|form|meta|base|link|svg|math|body)\b`)
	handlerRE   = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	badURLRE    = regexp.MustCompile(`(?i)(href|src|action|data|xlink:href)\s*=\s*["']?\s*(javascript|vbscript|data):`)
)

func TestMarkdownSanitizesXSS(t *testing.T) {
	t.Parallel()
	m := newMarkdown()
	for _, p := range xssPayloads {
		out := string(m.Render(p))
		if scriptTagRE.MatchString(out) || handlerRE.MatchString(out) || badURLRE.MatchString(out) ||
			strings.Contains(strings.ToLower(out), "javascript:alert") && strings.Contains(out, "href") {
			t.Errorf("payload %q survived as %q", p, out)
		}
	}
}

func TestMarkdownKeepsFormatting(t *testing.T) {
	t.Parallel()
	m := newMarkdown()
	out := string(m.Render("# Title\n\n**bold** and [link](https://example.com) and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote"))
	for _, want := range []string{"<h1>Title</h1>", "<strong>bold</strong>", `<a href="https://example.com" rel="nofollow">link</a>`,
		"<code>code</code>", "<table>", "<blockquote>"} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered Markdown lacks %q:\n%s", want, out)
		}
	}
}

// Issue 9.6: some shapes of Markdown made goldmark work far more than
// their size (a 100 KB body: 2 to 24 s), or write far more (tables padded
// to their header, nested quotes: 27 bytes per '>'). With the guards the
// output stays within its bound, nesting within maxNesting, table cells
// within maxTableCells, and the text of what was not parsed is still
// shown. (Their cost is in BenchmarkMarkdown and docs/performance.md.)
func TestMarkdownBoundsPathologicalInput(t *testing.T) {
	t.Parallel()
	m := newMarkdown()
	for name, src := range pathologicalMarkdown(100_000) {
		t.Run(name, func(t *testing.T) {
			raw, err := m.convert([]byte(src))
			if err != nil {
				t.Fatalf("convert: %v", err) // none of these needs the whole-body fallback
			}
			if max := outputFactor*len(src) + outputSlack; len(raw) > max {
				t.Fatalf("%d bytes of HTML from %d of Markdown, want at most %d", len(raw), len(src), max)
			}
			out := string(m.Render(src))
			if depth := nestingDepth(t, out); depth > maxNesting {
				t.Errorf("blocks nested %d deep, want at most %d", depth, maxNesting)
			}
			if cells := strings.Count(out, "<td"); cells > maxTableCells {
				t.Errorf("%d table cells, want at most %d", cells, maxTableCells)
			}
		})
	}
	// Text past a bound is kept, as text.
	brackets := strings.Repeat("[", 300) + "the words" + strings.Repeat("]", 300)
	out := string(m.Render("Before.\n\n" + brackets + "\n\n" + strings.Repeat(">", 100) + " deep"))
	for _, want := range []string{"<p>Before.</p>", "<p>" + brackets + "</p>", strings.Repeat("&gt;", 100-maxNesting) + " deep</p>"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %.80q:\n%.400s", want, out)
		}
	}
}

// Ordinary articles never meet the bounds: a long one renders whole.
func TestMarkdownRendersNormalArticlesWhole(t *testing.T) {
	t.Parallel()
	m := newMarkdown()
	src := normalMarkdown(100_000)
	parts := strings.Count(src, "## Part ")
	out := string(m.Render(src))
	for _, want := range []string{"<h2>Part ", "<em>emphasis</em>", "<strong>strong</strong>", `rel="nofollow">link</a>`,
		"<img src=", "<li>a nested one</li>", "<blockquote>", "<table>", "<pre><code>func main()"} {
		if n := strings.Count(out, want); n != parts {
			t.Errorf("%q appears %d times, want %d", want, n, parts)
		}
	}
}

// nestingDepth is how deep the block elements of s are nested.
func nestingDepth(t *testing.T, s string) int {
	t.Helper()
	blocks := map[string]bool{"blockquote": true, "ul": true, "ol": true, "li": true}
	depth, deepest := 0, 0
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return deepest
		case html.StartTagToken:
			if name, _ := z.TagName(); blocks[string(name)] {
				depth++
				deepest = max(deepest, depth)
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); blocks[string(name)] {
				depth--
			}
		}
	}
}

// FuzzMarkdown renders any input: it must not panic, the HTML must be
// sanitized (no script-capable element, no event handler or style
// attribute, no URL with a scheme other than http, https or mailto), and
// its size bounded by the input's. Seeds: the XSS payloads above, an
// ordinary article, and testdata/fuzz/FuzzMarkdown (the pathological
// shapes of pathologicalMarkdown, 4 KB each).
func FuzzMarkdown(f *testing.F) {
	for _, p := range xssPayloads {
		f.Add(p)
	}
	f.Add(normalMarkdown(3000))
	m := newMarkdown()
	f.Fuzz(func(t *testing.T, src string) {
		out := string(m.Render(src))
		// The sanitizer may add rel="nofollow" to links: at most doubling.
		if max := 2 * (outputFactor*len(src) + outputSlack); len(out) > max {
			t.Fatalf("%d bytes of HTML from %d of Markdown, want at most %d", len(out), len(src), max)
		}
		if problem := unsafeHTML(out); problem != "" {
			t.Fatalf("%s in the HTML of %q:\n%s", problem, src, out)
		}
	})
}

// unsafeHTML names the first thing in s that could run script or load
// something from a scheme we do not allow, or returns "".
func unsafeHTML(s string) string {
	banned := map[string]bool{"script": true, "style": true, "iframe": true, "frame": true, "object": true, "embed": true,
		"form": true, "meta": true, "base": true, "link": true, "svg": true, "math": true, "body": true,
		"html": true, "template": true, "noscript": true}
	urlAttrs := map[string]bool{"href": true, "src": true, "action": true, "formaction": true, "data": true,
		"xlink:href": true, "poster": true, "background": true, "cite": true, "srcset": true}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if banned[tok.Data] {
				return "element <" + tok.Data + ">"
			}
			for _, a := range tok.Attr {
				key := strings.ToLower(a.Key)
				switch {
				case strings.HasPrefix(key, "on"):
					return "attribute " + key
				case key == "style":
					return "style attribute"
				case urlAttrs[key] && !allowedURL(a.Val):
					return key + "=" + a.Val
				}
			}
		}
	}
}

// allowedURL reports whether u, as a browser reads it (control characters
// and whitespace dropped), is relative or uses http, https or mailto.
func allowedURL(u string) bool {
	clean := strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return unicode.ToLower(r)
	}, u)
	scheme, _, found := strings.Cut(clean, ":")
	if !found || strings.ContainsAny(scheme, "/?#") {
		return true // no scheme: a relative URL
	}
	return scheme == "http" || scheme == "https" || scheme == "mailto"
}

// renderedBy are the versions of the renderer's dependencies that
// markdownVersion was set for. A stored rendering is reused until
// markdownVersion changes, so upgrading either must bump it (and this).
var renderedBy = map[string]string{
	"github.com/yuin/goldmark":           "v1.8.7",
	"github.com/microcosm-cc/bluemonday": "v1.0.27",
}

func TestMarkdownVersionFollowsDependencies(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for path, version := range renderedBy {
		if !strings.Contains(string(mod), "\t"+path+" "+version+"\n") {
			t.Errorf("go.mod no longer requires %s %s: bump markdownVersion (stored renderings are made again) and update renderedBy", path, version)
		}
	}
}
