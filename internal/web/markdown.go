package web

import (
	"bytes"
	"html/template"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// markdown turns an article body into safe HTML: goldmark renders it
// (raw HTML in the source is dropped, not passed through), then bluemonday
// keeps only a whitelist of elements and attributes, so no script, event
// handler or javascript: URL survives even if the renderer had a bug.
type markdown struct {
	md     goldmark.Markdown
	policy *bluemonday.Policy
}

func newMarkdown() *markdown {
	p := bluemonday.UGCPolicy()
	p.RequireNoFollowOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(false)
	p.AllowURLSchemes("http", "https", "mailto")
	return &markdown{
		md:     goldmark.New(goldmark.WithExtensions(extension.GFM)),
		policy: p,
	}
}

// Render returns the sanitized HTML of src. On a rendering error the
// source is shown as escaped text, never as markup.
func (m *markdown) Render(src string) template.HTML {
	var buf bytes.Buffer
	if err := m.md.Convert([]byte(src), &buf); err != nil {
		return template.HTML("<pre>" + template.HTMLEscapeString(src) + "</pre>")
	}
	return template.HTML(m.policy.SanitizeBytes(buf.Bytes()))
}
