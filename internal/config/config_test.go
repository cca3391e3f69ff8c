package config

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

var all = []string{"addr", "data-dir", "database-url", "jwt-keys", "token-ttl", "log-format", "log-level",
	"shutdown-timeout", "drain-delay", "cache-items", "bcrypt-cost"}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Parse("serve", "", all, nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Addr: ":8080", DataDir: "./data", TokenTTL: 30 * 24 * time.Hour, LogFormat: "text", LogLevel: "info",
		ShutdownTimeout: 15 * time.Second, CacheItems: 10000, BcryptCost: 10}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	if c.SQLitePath() != "data/conduit.db" || c.KeyFile() != "data/jwt.keys" {
		t.Errorf("paths = %q %q", c.SQLitePath(), c.KeyFile())
	}
}

func TestFlagsEnvAndPrecedence(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want func(Config) bool
	}{
		{"flag", []string{"--addr", "127.0.0.1:9000"}, nil, func(c Config) bool { return c.Addr == "127.0.0.1:9000" }},
		{"flag with =", []string{"-data-dir=/tmp/x"}, nil, func(c Config) bool { return c.DataDir == "/tmp/x" }},
		{"env", nil, map[string]string{"CONDUIT_ADDR": ":1234", "CONDUIT_DRAIN_DELAY": "3s", "CONDUIT_CACHE_ITEMS": "5"},
			func(c Config) bool { return c.Addr == ":1234" && c.DrainDelay == 3*time.Second && c.CacheItems == 5 }},
		{"flag beats env", []string{"--addr", ":1"}, map[string]string{"CONDUIT_ADDR": ":2"}, func(c Config) bool { return c.Addr == ":1" }},
		{"database url", nil, map[string]string{"CONDUIT_DATABASE_URL": "postgres://u:p@h/db"},
			func(c Config) bool { return c.DatabaseURL == "postgres://u:p@h/db" }},
		{"json logs", []string{"--log-format", "json", "--log-level", "debug"}, nil,
			func(c Config) bool { return c.LogFormat == "json" && c.LogLevel == "debug" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse("serve", "", all, c.args, env(c.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if !c.want(got) {
				t.Errorf("config = %+v", got)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		mention string // the message names what is wrong
	}{
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"flag of another command", []string{"--addr", ":1"}, nil, "addr"},
		{"stray argument", []string{"extra"}, nil, "extra"},
		{"bad duration flag", []string{"--token-ttl", "forever"}, nil, "token-ttl"},
		{"bad duration env", nil, map[string]string{"CONDUIT_TOKEN_TTL": "forever"}, "CONDUIT_TOKEN_TTL"},
		{"bad number", []string{"--cache-items", "many"}, nil, "cache-items"},
		{"negative number", []string{"--cache-items", "-1"}, nil, "cache-items"},
		{"negative duration", []string{"--drain-delay", "-1s"}, nil, "negative"},
		{"log format", []string{"--log-format", "xml"}, nil, "log-format"},
		{"log level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"database url scheme", []string{"--database-url", "mysql://x"}, nil, "database-url"},
		{"bcrypt cost", []string{"--bcrypt-cost", "40"}, nil, "bcrypt-cost"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			names := all
			if c.name == "flag of another command" {
				names = []string{"data-dir"}
			}
			var out bytes.Buffer
			_, err := Parse("serve", "", names, c.args, env(c.env), &out)
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error() + out.String(); !strings.Contains(msg, c.mention) {
				t.Errorf("message %q does not mention %q", msg, c.mention)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		var out bytes.Buffer
		_, err := Parse("serve", "Runs the web server.", all, []string{arg}, env(nil), &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
		for _, want := range []string{"Usage: conduit serve", "Runs the web server.", "--addr", "CONDUIT_ADDR", `(default ":8080")`, "--jwt-keys", "CONDUIT_JWT_KEYS"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: usage lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
}

func TestMaskURL(t *testing.T) {
	cases := map[string]string{
		"postgres://user:secret@db:5432/conduit":                  "postgres://user:***@db:5432/conduit",
		"postgres://user@db/conduit":                              "postgres://user@db/conduit",
		"postgres://db/conduit":                                   "postgres://db/conduit",
		"postgres://u:p@ss@word@db/x":                             "postgres://u:***@db/x",
		"postgresql://a:b@h1,h2/db?sslmode=allow":                 "postgresql://a:***@h1,h2/db?sslmode=allow",
		"postgres://h/db?user=u&password=hunter2&sslmode=disable": "postgres://h/db?user=u&password=***&sslmode=disable",
		"postgres://x:y@h/db?Password=z":                          "postgres://x:***@h/db?Password=***",
	}
	for in, want := range cases {
		if got := MaskURL(in); got != want {
			t.Errorf("MaskURL(%q) = %q, want %q", in, got, want)
		}
	}
	c := Config{DatabaseURL: "postgres://u:topsecret@h/db"}
	if strings.Contains(c.DatabaseDescription(), "topsecret") {
		t.Errorf("description leaks the password: %s", c.DatabaseDescription())
	}
}

func TestReplicaURLs(t *testing.T) {
	names := []string{"database-url", "replica-urls", "replica-max-lag"}
	c, err := Parse("serve", "", names, nil, env(map[string]string{
		"CONDUIT_REPLICA_URLS": "postgres://u@r1:5432/db?sslmode=disable, postgres://u@h1:5433,h2:5434,h3/db?target_session_attrs=standby,postgresql://r4/db",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"postgres://u@r1:5432/db?sslmode=disable", "postgres://u@h1:5433,h2:5434,h3/db?target_session_attrs=standby", "postgresql://r4/db"}
	got := c.ReplicaURLList()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("replica URLs = %q, want %q", got, want)
	}
	if c.ReplicaMaxLag != 5*time.Second {
		t.Errorf("default --replica-max-lag = %v, want 5s", c.ReplicaMaxLag)
	}
	if (Config{}).ReplicaURLList() != nil {
		t.Error("no replicas configured, yet a list")
	}
	if _, err := Parse("serve", "", names, []string{"--replica-urls", "mysql://x"}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("a replica URL that is not postgres:// was accepted")
	}
	if _, err := Parse("serve", "", names, []string{"--replica-max-lag", "-1s"}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("a negative --replica-max-lag was accepted")
	}
}
