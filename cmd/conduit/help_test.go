package main

import (
	"context"
	"errors"
	"flag"
	"regexp"
	"strings"
	"testing"
)

// flagLine is a flag's line in a usage text: two spaces, then the flag.
var flagLine = regexp.MustCompile(`^  -`)

// Every command prints its flags the same way: "--name", with the
// environment variable in parentheses where there is one, the usage on
// the next line, and never Go's default "-name" listing.
func TestHelpHasOneStyle(t *testing.T) {
	cases := []struct {
		cmd  string
		want []string // in the usage text
	}{
		{"serve", []string{"  --addr (CONDUIT_ADDR)\n", `(default ":8080")`, "  --debug-addr (CONDUIT_DEBUG_ADDR)\n",
			"serve waits for it"}},
		{"migrate", []string{"  --database-url (CONDUIT_DATABASE_URL)\n", "migrate fails at once"}},
		{"copy", []string{"  --from-data-dir (CONDUIT_FROM_DATA_DIR)\n", "  --database-url (CONDUIT_DATABASE_URL)\n"}},
		{"seed", []string{"  --bcrypt-cost (CONDUIT_BCRYPT_COST)\n", "Flags of this command:\n", "  --scale\n", "  --reset\n        delete all"}},
		{"bench", []string{"Flags:\n", "  --url\n        base URL of the server (default \"http://127.0.0.1:8080\")\n",
			"  --rate\n", "  --baseline\n        also measure a trivial handler of the same response size and print the ratio\n",
			"~94% reads"}},
	}
	for _, c := range cases {
		t.Run(c.cmd, func(t *testing.T) {
			var stdout, stderr strings.Builder
			err := run(context.Background(), []string{c.cmd, "--help"}, func(string) string { return "" }, &stdout, &stderr)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("err = %v, want flag.ErrHelp", err)
			}
			help := stderr.String()
			if !strings.HasPrefix(help, "Usage: conduit "+c.cmd+" [flags]\n\n") {
				t.Errorf("help does not start with the usage line:\n%s", help)
			}
			for _, w := range c.want {
				if !strings.Contains(help, w) {
					t.Errorf("help lacks %q:\n%s", w, help)
				}
			}
			flags := 0
			for _, line := range strings.Split(help, "\n") {
				if !flagLine.MatchString(line) {
					continue
				}
				flags++
				if !strings.HasPrefix(line, "  --") || strings.ContainsAny(line, "\t") {
					t.Errorf("flag line %q is not in the --name style", line)
				}
			}
			if flags == 0 {
				t.Errorf("no flags listed:\n%s", help)
			}
			if strings.Contains(help, "%%") || strings.Contains(help, "(default \"false\")") {
				t.Errorf("help shows format escapes or false defaults:\n%s", help)
			}
		})
	}
}
