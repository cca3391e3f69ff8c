package web

import (
	"bytes"
	"sort"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// BenchmarkMarkdown measures rendering a body (Markdown to sanitized HTML)
// with the guards ("bounded") and as it was before them ("unbounded":
// goldmark with GFM, then the same sanitizer), for ordinary articles of
// 5 KB and 100 KB and the 100 KB pathological bodies. Unbounded renders
// take seconds each; two are skipped: nested quotes (24 s) and the padded
// table (gigabytes of memory). Run it once per case:
//
//	go test ./internal/web -run '^$' -bench Markdown -benchtime 1x
func BenchmarkMarkdown(b *testing.B) {
	inputs := pathologicalMarkdown(100_000)
	inputs["ordinary 5 KB"] = normalMarkdown(5_000)
	inputs["ordinary 100 KB"] = normalMarkdown(100_000)
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	sort.Strings(names)

	m := newMarkdown()
	unbounded := goldmark.New(goldmark.WithExtensions(extension.GFM))
	policy := sanitizer()
	for _, name := range names {
		src := inputs[name]
		b.Run("bounded/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				m.Render(src)
			}
		})
		b.Run("unbounded/"+name, func(b *testing.B) {
			if name == "nested quotes" || name == "table padded rows" {
				b.Skip("takes too long or too much memory without the guards")
			}
			b.SetBytes(int64(len(src)))
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				if err := unbounded.Convert([]byte(src), &out); err != nil {
					b.Fatal(err)
				}
				policy.SanitizeBytes(out.Bytes())
			}
		})
	}
}
