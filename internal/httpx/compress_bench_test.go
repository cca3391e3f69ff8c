package httpx

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCompress measures the CPU cost of compressing typical answers
// (pages and a list rendered from the seeded dataset, in testdata/pages)
// per coding at the per-request level, and reports the bytes saved.
//
//	go test -run - -bench Compress ./internal/httpx
func BenchmarkCompress(b *testing.B) {
	files, err := filepath.Glob("testdata/pages/*")
	if err != nil || len(files) == 0 {
		b.Fatalf("no sample pages: %v", err)
	}
	c := NewCompressor(CompressFast)
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		for _, enc := range []string{Gzip, Zstd} {
			b.Run(filepath.Base(f)+"/"+enc, func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				var out []byte
				for b.Loop() {
					out = c.Compress(enc, body)
				}
				b.ReportMetric(float64(len(out)), "bytes_out")
				b.ReportMetric(float64(len(body))/float64(len(out)), "ratio")
			})
		}
	}
}
