package web

import (
	"regexp"
	"strings"
	"testing"
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
	m := newMarkdown()
	out := string(m.Render("# Title\n\n**bold** and [link](https://example.com) and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote"))
	for _, want := range []string{"<h1>Title</h1>", "<strong>bold</strong>", `<a href="https://example.com" rel="nofollow">link</a>`,
		"<code>code</code>", "<table>", "<blockquote>"} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered Markdown lacks %q:\n%s", want, out)
		}
	}
}
