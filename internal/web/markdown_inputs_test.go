package web

import (
	"fmt"
	"strings"
)

// pathologicalMarkdown returns bodies of about n bytes on which goldmark's
// work, or its output, grows faster than the input (found by timing
// repetitions of short strings at growing sizes; see docs/security.md).
func pathologicalMarkdown(n int) map[string]string {
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	lines := func(size int, line func(i int) string) string {
		var b strings.Builder
		for i := 0; b.Len() < size; i++ {
			b.WriteString(line(i))
		}
		return b.String()
	}
	cols := 200
	return map[string]string{
		"nested quotes":         rep(">"),
		"nested quotes spaced":  rep(" > "),
		"nested quote lists":    rep("> - "),
		"nested lists":          lines(n, func(i int) string { return strings.Repeat("- ", i%1000) + "a\n" }),
		"nested indented lists": lines(n, func(i int) string { return strings.Repeat("  ", i%500) + "- a\n" }),
		"link openers":          rep("[]("),
		"nested brackets":       strings.Repeat("[", n/2) + strings.Repeat("]", n/2),
		"emphasis mix":          rep("_*a"),
		"emphasis strike mix":   rep("a*~"),
		"strike lines":          rep("\n~*"),
		"emphasis link mix":     rep("*["),
		"backtick runs":         rep("`a"),
		"heading of brackets":   "# " + rep("[]("),
		"setext of emphasis":    rep("_*a") + "\n===\n",
		"table padded rows": "|" + strings.Repeat("a|", cols) + "\n|" + strings.Repeat("-|", cols) + "\n" +
			strings.Repeat("|\n", (n-4*cols)/2),
		"many small tables": lines(n, func(i int) string {
			return "|" + strings.Repeat("a|", 20) + "\n|" + strings.Repeat("-|", 20) + "\n" + strings.Repeat("|\n", 20) + "\n"
		}),
		"empty quotes": rep(">\n\n"),
		"autolinks":    rep("www.a.co "),
		"quotes chars": rep("\""),
		"refdef chain": lines(n/2, func(i int) string { return fmt.Sprintf("[r%d]: /r%d\n", i, i+1) }) +
			strings.Repeat("[r1] ", n/10),
	}
}

// normalMarkdown is an article of about n bytes as people write them.
func normalMarkdown(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "## Part %d\n\nSome *emphasis*, some **strong** words, a [link](https://example.com/%d) and `code`.\n"+
			"A second line of the same paragraph, with an ![image](https://img.example/%d.png).\n\n"+
			"- one item\n- two items with _more_\n  - a nested one\n\n> a quote\n> on two lines\n\n"+
			"| a | b |\n|---|---|\n| 1 | 2 |\n\n```go\nfunc main() { fmt.Println(%d) }\n```\n\n", i, i, i, i)
	}
	return b.String()
}
