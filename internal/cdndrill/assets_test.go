//go:build linux

package cdndrill

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/testproc"
)

// variantBuild builds conduit with a changed stylesheet: another build,
// whose app.css has another fingerprint (as the next release would).
func variantBuild(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../web/static/app.css")
	if err != nil {
		t.Fatal(err)
	}
	css, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	changed := filepath.Join(t.TempDir(), "app.css")
	if err := os.WriteFile(changed, append(css, []byte("\n/* the next release */ .release-two { color: #123456 }\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{src: changed}})
	f := filepath.Join(t.TempDir(), "overlay.json")
	if err := os.WriteFile(f, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	return testproc.Build(t, testproc.ConduitPkg, "-overlay", f)
}

var assetRE = regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`)

// assetLinks returns the static files the pages at base link.
func assetLinks(t *testing.T, base string) []string {
	t.Helper()
	var out []string
	for _, p := range []string{"/", "/login"} {
		r := do(t, "GET", base+p, nil)
		if r.status != 200 {
			t.Fatalf("%s%s: %d", base, p, r.status)
		}
		for _, m := range assetRE.FindAllStringSubmatch(r.body, -1) {
			out = append(out, m[1])
		}
	}
	if len(out) == 0 {
		t.Fatalf("no asset links on %s", base)
	}
	return out
}

// servesAll checks that every asset answers 200 from every base, with the
// content its fingerprint names.
func servesAll(t *testing.T, assets []string, bases ...string) {
	t.Helper()
	for _, a := range assets {
		parts := strings.Split(filepath.Base(a), ".")
		want := parts[len(parts)-2]
		for _, b := range bases {
			r := do(t, "GET", b+a, nil)
			sum := sha256.Sum256([]byte(r.body))
			if r.status != 200 || hex.EncodeToString(sum[:6]) != want {
				t.Errorf("%s from %s: %d, content hash %x", a, b, r.status, sum[:6])
			}
		}
	}
}

func cssOf(assets []string) string {
	for _, a := range assets {
		if strings.HasPrefix(a, "/static/app.") && strings.HasSuffix(a, ".css") {
			return a
		}
	}
	return ""
}

// TestRollingDeployAssets runs two builds at once: every asset any page of
// either build links answers 200 on every node, through the balancer and
// through the edge (PostgreSQL: both builds behind one balancer; SQLite:
// the old build's pages, cached by the edge, after the node restarted
// into the new build).
func TestRollingDeployAssets(t *testing.T) {
	gate(t)
	oldBin, newBin := conduitBin.Path(t), variantBuild(t)
	for _, db := range databases(t) {
		t.Run(db, func(t *testing.T) {
			if db == "postgres" {
				c := newCluster(t, db, 2, "60s", oldBin, newBin)
				n1, n2 := "http://127.0.0.1:"+strconv.Itoa(c.ports[0]), "http://127.0.0.1:"+strconv.Itoa(c.ports[1])
				old, cur := assetLinks(t, n1), assetLinks(t, n2)
				if cssOf(old) == "" || cssOf(old) == cssOf(cur) {
					t.Fatalf("the two builds link the same stylesheet %q", cssOf(old))
				}
				all := append(old, cur...)
				// Pages through the balancer come from either build.
				for range 4 {
					all = append(all, assetLinks(t, "http://"+c.backend)...)
				}
				servesAll(t, all, n1, n2, "http://"+c.backend, c.edge.URL)
				return
			}
			c := newCluster(t, db, 1, "60s", oldBin)
			old := assetLinks(t, c.edge.URL) // now cached at the edge
			c.nodes[0].Stop(syscall.SIGTERM, 20*time.Second)
			c.bins[0] = newBin
			c.startNode(0)
			testproc.WaitHTTP(t, "http://127.0.0.1:"+strconv.Itoa(c.ports[0])+"/readyz", 30*time.Second)
			node := "http://127.0.0.1:" + strconv.Itoa(c.ports[0])
			cur := assetLinks(t, node)
			if cssOf(old) == cssOf(cur) {
				t.Fatalf("the two builds link the same stylesheet %q", cssOf(old))
			}
			servesAll(t, append(old, cur...), node)
		})
	}
}
