package web

import (
	"bytes"
	"errors"
	"html/template"
	"io"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// markdown turns an article body into safe HTML: goldmark renders it
// (raw HTML in the source is dropped, not passed through), then bluemonday
// keeps only a whitelist of elements and attributes, so no script, event
// handler or javascript: URL survives even if the renderer had a bug.
//
// goldmark's work grows faster than its input on some shapes of input
// (measured with 100 KB bodies, see docs/security.md#markdown): deeply
// nested block quotes and lists, many emphasis delimiters or brackets in
// one paragraph, and tables whose rows are padded to the header's columns.
// The guards below keep each of them within a bound, so the work is about
// linear in the input: past a bound, the part concerned (a line, a
// paragraph) is shown as plain text instead of being parsed. Past
// maxOutput, the whole body is shown as plain text.
type markdown struct {
	md     goldmark.Markdown
	policy *bluemonday.Policy
}

// markdownVersion names the HTML a body gives. A rendering stored with an
// article (conduit.Service.SaveArticleHTML) is used while its version is
// at least this one and rendered again, once, when it is older, so a fix
// to the sanitizer reaches every article. Bump it whenever the HTML of a
// body may change: the guards, the sanitizer's policy, or the version of
// goldmark or bluemonday (TestMarkdownVersionFollowsDependencies fails
// until it is bumped). Nodes with an older version, during a rolling
// upgrade, show a newer rendering they find as it is.
const markdownVersion = 1

// Bounds on the renderer's work (docs/security.md#markdown).
const (
	// maxNesting is the depth of block quotes, lists and list items in
	// one another; deeper markers are text.
	maxNesting = 32
	// maxInlineMarks is how many emphasis delimiter runs (*, _, ~),
	// brackets, backtick runs and '<' one paragraph or heading may hold
	// and still be parsed for inline markup.
	maxInlineMarks = 256
	// maxTableCells is how many cells the tables of one body may have
	// together, counting the empty cells rows are padded with.
	maxTableCells = 20_000
	// The HTML of a body may be at most outputFactor times its size plus
	// outputSlack bytes.
	outputFactor = 10
	outputSlack  = 64 << 10
)

func newMarkdown() *markdown {
	return &markdown{
		md: goldmark.New(
			goldmark.WithExtensions(extension.GFM),
			goldmark.WithParserOptions(
				parser.WithBlockParsers(util.Prioritized(blockGuard{}, 0)),
				// After link reference definitions leave the paragraph
				// (100), before tables are made of it (200).
				parser.WithParagraphTransformers(util.Prioritized(paragraphGuard{}, 150)),
			),
			goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(plainRenderer{}, 0))),
		),
		policy: sanitizer(),
	}
}

// sanitizer is the whitelist rendered HTML passes through.
func sanitizer() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.RequireNoFollowOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(false)
	p.AllowURLSchemes("http", "https", "mailto")
	return p
}

// Render returns the sanitized HTML of src. On a rendering error, or past
// the output bound, the source is shown as escaped text, never as markup.
func (m *markdown) Render(src string) template.HTML {
	out, err := m.convert([]byte(src))
	if err != nil {
		return template.HTML("<pre>" + template.HTMLEscapeString(src) + "</pre>")
	}
	return template.HTML(m.policy.SanitizeBytes(out))
}

// errTooLong ends a rendering whose output passes its bound.
var errTooLong = errors.New("markdown: output too long")

func (m *markdown) convert(src []byte) (out []byte, err error) {
	w := &boundedWriter{max: outputFactor*len(src) + outputSlack}
	defer func() {
		// goldmark ignores most write errors, so the writer stops it by
		// panicking; no other panic is taken.
		if p := recover(); p != nil {
			if p != errTooLong {
				panic(p)
			}
			out, err = nil, errTooLong
		}
	}()
	if err := m.md.Convert(src, w); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

// boundedWriter keeps at most max bytes and panics with errTooLong when
// asked to keep more.
type boundedWriter struct {
	buf bytes.Buffer
	max int
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.max {
		panic(errTooLong)
	}
	return w.buf.Write(p)
}

var _ io.Writer = (*boundedWriter)(nil)

// kindPlain is a block shown as plain text: a line or paragraph past one
// of the bounds.
var kindPlain = ast.NewNodeKind("PlainText")

type plainBlock struct{ ast.BaseBlock }

func (*plainBlock) Kind() ast.NodeKind { return kindPlain }

// IsRaw keeps the inline parsers away from the block's text.
func (*plainBlock) IsRaw() bool { return true }

func (n *plainBlock) Dump(source []byte, level int) { ast.DumpHelper(n, source, level, nil, nil) }

// plainRenderer writes a plainBlock as a paragraph of escaped text.
type plainRenderer struct{}

func (plainRenderer) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(kindPlain, func(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		_, _ = w.WriteString("<p>")
		lines := n.Lines()
		for i := range lines.Len() {
			if i > 0 {
				_ = w.WriteByte('\n')
			}
			seg := lines.At(i)
			_, _ = w.Write(util.EscapeHTML(util.TrimRightSpace(util.TrimLeftSpace(seg.Value(source)))))
		}
		_, _ = w.WriteString("</p>\n")
		return ast.WalkSkipChildren, nil
	})
}

// plainLine makes the rest of the reader's line a plainBlock.
func plainLine(reader text.Reader) (ast.Node, parser.State) {
	_, segment := reader.PeekLine()
	n := &plainBlock{}
	n.Lines().Append(segment)
	reader.AdvanceToEOL()
	return n, parser.NoChildren
}

// blockGuard runs before the other block parsers where a container or an
// ATX heading could start. It lets them be, except that it takes a line
// as plain text when the line would open a container past maxNesting, or
// is a heading with more than maxInlineMarks marks.
type blockGuard struct{}

func (blockGuard) Trigger() []byte {
	return []byte{'>', '-', '+', '*', '#', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'}
}

func (blockGuard) Open(parent ast.Node, reader text.Reader, _ parser.Context) (ast.Node, parser.State) {
	line, _ := reader.PeekLine()
	if c := firstNonSpace(line); c == '#' {
		if inlineMarks(line) > maxInlineMarks {
			return plainLine(reader)
		}
		return nil, parser.NoChildren
	}
	depth := 0
	for p := parent; p != nil && p.Kind() != ast.KindDocument; p = p.Parent() {
		depth++
	}
	if depth >= maxNesting {
		return plainLine(reader)
	}
	return nil, parser.NoChildren
}

func (blockGuard) Continue(ast.Node, text.Reader, parser.Context) parser.State { return parser.Close }
func (blockGuard) Close(ast.Node, text.Reader, parser.Context)                 {}
func (blockGuard) CanInterruptParagraph() bool                                 { return true }
func (blockGuard) CanAcceptIndentedLine() bool                                 { return false }

func firstNonSpace(line []byte) byte {
	for _, c := range line {
		if c != ' ' && c != '\t' {
			return c
		}
	}
	return 0
}

// paragraphGuard makes a paragraph plain text when its inline markup or
// the table it would become is past the bounds.
type paragraphGuard struct{}

// tableCellsKey counts the table cells of one body so far.
var tableCellsKey = parser.NewContextKey()

func (paragraphGuard) Transform(node *ast.Paragraph, reader text.Reader, pc parser.Context) {
	lines := node.Lines()
	source := reader.Source()
	marks, pipes, delimiterRow := 0, 0, false
	for i := range lines.Len() {
		seg := lines.At(i)
		line := seg.Value(source)
		marks += inlineMarks(line)
		pipes = max(pipes, bytes.Count(line, []byte{'|'}))
		delimiterRow = delimiterRow || i > 0 && isDelimiterRow(line)
	}
	over := marks > maxInlineMarks
	if delimiterRow {
		// At most (pipes+1) columns and a row per line; rows are padded
		// to the header's columns.
		cells, _ := pc.Get(tableCellsKey).(int)
		cells += (pipes + 1) * lines.Len()
		pc.Set(tableCellsKey, cells)
		over = over || cells > maxTableCells
	}
	if !over {
		return
	}
	plain := &plainBlock{}
	plain.SetLines(lines)
	plain.SetBlankPreviousLines(node.HasBlankPreviousLines())
	node.Parent().ReplaceChild(node.Parent(), node, plain)
}

// inlineMarks counts what makes inline parsing work hard: runs of emphasis
// delimiters and backticks, and brackets and '<'.
func inlineMarks(line []byte) int {
	n := 0
	for i, c := range line {
		switch c {
		case '[', ']', '<':
			n++
		case '*', '_', '~', '`':
			if i == 0 || line[i-1] != c {
				n++
			}
		}
	}
	return n
}

// isDelimiterRow reports whether line could be a table's delimiter row:
// only pipes, dashes, colons and spaces, with a dash.
func isDelimiterRow(line []byte) bool {
	dash := false
	for _, c := range line {
		switch c {
		case '-':
			dash = true
		case '|', ':', ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return dash
}
