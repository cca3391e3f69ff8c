package httpx

import (
	"bytes"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Content codings Conduit sends. zstd is preferred when a client accepts
// both: it is faster than gzip at a better ratio. Brotli is left out: every
// browser that sends "br" also sends "gzip", and one library
// (github.com/klauspost/compress, already a dependency of the Prometheus
// client) serves both codings we use.
const (
	Zstd = "zstd"
	Gzip = "gzip"
)

// MinCompressSize is the smallest body worth compressing: below about one
// network packet the bytes saved do not pay for the work, and a small body
// may even grow.
const MinCompressSize = 1024

// CompressionLevel chooses speed or size.
type CompressionLevel int

const (
	// CompressFast is for responses made per request: a moderate level,
	// since the CPU is spent on every response.
	CompressFast CompressionLevel = iota
	// CompressBest is for bodies compressed once and sent many times
	// (static assets): the smallest output, whatever it costs once.
	CompressBest
)

// Compressor compresses bodies in the codings above. It is safe for
// concurrent use.
type Compressor struct {
	gzipLevel int
	gz        sync.Pool // *gzip.Writer at gzipLevel
	zs        *zstd.Encoder
}

// NewCompressor returns a Compressor at level.
func NewCompressor(level CompressionLevel) *Compressor {
	gzipLevel, zstdLevel := 5, zstd.SpeedDefault
	if level == CompressBest {
		gzipLevel, zstdLevel = gzip.BestCompression, zstd.SpeedBestCompression
	}
	zs, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstdLevel),
		// Windows above 8 MiB may be refused by HTTP clients (RFC 9659);
		// our bodies are far smaller.
		zstd.WithWindowSize(1<<20),
		zstd.WithEncoderConcurrency(1),
		zstd.WithZeroFrames(true))
	if err != nil {
		panic("httpx: zstd options: " + err.Error()) // constant options: a programming error
	}
	c := &Compressor{gzipLevel: gzipLevel, zs: zs}
	c.gz.New = func() any {
		w, _ := gzip.NewWriterLevel(nil, gzipLevel) // the level is a valid constant
		return w
	}
	return c
}

// Compress returns body in coding enc (Zstd or Gzip). The output depends
// only on the input and the level, so a strong validator may name it.
func (c *Compressor) Compress(enc string, body []byte) []byte {
	if enc == Zstd {
		return c.zs.EncodeAll(body, make([]byte, 0, len(body)/3+64))
	}
	var buf bytes.Buffer
	buf.Grow(len(body)/3 + 64)
	w := c.gz.Get().(*gzip.Writer)
	w.Reset(&buf)
	_, _ = w.Write(body) // writes to a bytes.Buffer do not fail
	_ = w.Close()
	c.gz.Put(w)
	return buf.Bytes()
}

// AcceptedEncoding is the coding to answer r in: Zstd or Gzip when r's
// Accept-Encoding allows it (q > 0, directly or through "*"), zstd first
// on equal weight; "" for none (identity).
func AcceptedEncoding(r *http.Request) string {
	ae := r.Header.Values("Accept-Encoding")
	if len(ae) == 0 {
		return ""
	}
	q := map[string]float64{}
	for _, line := range ae {
		for part := range strings.SplitSeq(line, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "x-gzip" {
				name = Gzip
			}
			if name == "" {
				continue
			}
			q[name] = qValue(params)
		}
	}
	weight := func(enc string) float64 {
		if v, ok := q[enc]; ok {
			return v
		}
		return q["*"] // 0 when absent
	}
	best, bestQ := "", 0.0
	for _, enc := range []string{Zstd, Gzip} {
		if w := weight(enc); w > bestQ {
			best, bestQ = enc, w
		}
	}
	return best
}

// qValue reads the weight of one Accept-Encoding entry's parameters (1
// when absent, 0 when malformed).
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return 0
		}
		return f
	}
	return 1
}

// Compressible reports whether a body of this media type is text that
// compresses (HTML, CSS, JavaScript, JSON, XML and Atom, SVG).
func Compressible(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/javascript", "application/xml", "image/svg+xml":
		return true
	}
	return false
}

// AddVary adds names to h's Vary header unless they are there already.
func AddVary(h http.Header, names ...string) {
	have := map[string]bool{}
	for _, v := range h.Values("Vary") {
		for n := range strings.SplitSeq(v, ",") {
			have[strings.ToLower(strings.TrimSpace(n))] = true
		}
	}
	for _, n := range names {
		if !have[strings.ToLower(n)] {
			h.Add("Vary", n)
			have[strings.ToLower(n)] = true
		}
	}
}
