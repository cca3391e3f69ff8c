// Package config reads Conduit's settings from flags with environment
// variable equivalents (flags win), validates them once and prints them with
// secrets masked.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultWorkers is how many jobs a process runs at once unless --workers
// says otherwise. A job mostly waits for the database (the write lock and
// the commit on SQLite, round trips on PostgreSQL), not for the CPU: with
// one runner the outbox fell behind the benchmark's full mix on SQLite by
// ~15 jobs a second without end, and feeds stayed on the slow path while
// their users' follows waited (docs/performance.md); four kept up.
const DefaultWorkers = 4

// Config is every setting of the conduit binary.
type Config struct {
	Addr            string
	DataDir         string
	FromDataDir     string // conduit copy: the stage-1 data dir to read
	DatabaseURL     string
	JWTKeys         string // secret: id:base64,… ; empty means a key file in DataDir
	TokenTTL        time.Duration
	LogFormat       string
	LogLevel        string
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration
	CacheItems      int
	BcryptCost      int

	// Stage 5: a shared cache tier.
	CacheURL     string        // redis://…; empty: in-process cache only
	CacheTimeout time.Duration // timeout of one cache read
	CacheTTL     time.Duration // life of a cached value and of a kept list page, with CacheURL
	CacheListTTL time.Duration // life of a list page kept in Redis for every node, with CacheURL

	// PostgreSQL pool settings (ignored for SQLite).
	DBMaxConns         int
	DBConnLifetime     time.Duration
	DBStatementTimeout time.Duration
	DBConnectTimeout   time.Duration

	// Stage 3: several nodes behind a load balancer.
	MaxInFlight    int           // concurrent requests per node; 0: no limit
	MaxQueue       int           // requests that may wait for a slot
	QueueWait      time.Duration // longest wait for a slot before a 503
	TrustedProxies string        // CIDR list whose X-Forwarded-For is believed
	IdempotencyTTL time.Duration // how long an Idempotency-Key is remembered
	AdminAddr      string        // private listener for /metrics; empty: none
	DebugAddr      string        // pprof listener; empty: none
	MemoryLimit    string        // Go soft memory limit: empty derived, "off", a size or a percentage

	// Stage 7: the queue, its workers and the feed's fan-out.
	QueueURL           string        // nats://…; empty: jobs run straight from the outbox
	Workers            int           // jobs run at once by this process (serve: 0 runs none)
	FanoutMaxFollowers int           // authors with more followers are merged into feeds on read
	TimelineCap        int           // newest articles a home timeline keeps
	JobLease           time.Duration // a job is delivered again after this if its worker died
	JobMaxAttempts     int           // attempts before a job becomes a dead letter

	// Stage 6: a CDN / caching proxy in front.
	AssetURL      string        // base URL pages link static files at; empty: this host
	EdgePurgeURLs string        // comma-separated purge addresses of the edges; empty: no purges
	SharedMaxAge  time.Duration // s-maxage of anonymous answers; 0: no shared caching

	// Throttling of sign-ins and sign-ups (0: that rule is off).
	LoginWindow      time.Duration
	LoginMaxPerAddr  int
	LoginMaxPerAcct  int
	SignupWindow     time.Duration
	SignupMaxPerAddr int

	// Stage 4: read replicas (PostgreSQL only).
	ReplicaURLs   string        // comma-separated replica URLs (see ReplicaURLList)
	ReplicaMaxLag time.Duration // a replica further behind gets no reads

	// The product's extensions.
	PublicURL string // scheme://host clients reach the site at; empty: from each request
	MediaURL  string // secret (may hold keys): s3://… object store for uploads; empty: <data-dir>/media
}

// option binds one flag to its environment variable.
type option struct {
	flag, env, usage string
	set              func(fs *flag.FlagSet, name, usage string)
}

// options lists the settings; each subcommand registers the ones it uses.
func (c *Config) options() map[string]option {
	str := func(p *string, def string) func(*flag.FlagSet, string, string) {
		return func(fs *flag.FlagSet, n, u string) { fs.StringVar(p, n, def, u) }
	}
	dur := func(p *time.Duration, def time.Duration) func(*flag.FlagSet, string, string) {
		return func(fs *flag.FlagSet, n, u string) { fs.DurationVar(p, n, def, u) }
	}
	num := func(p *int, def int) func(*flag.FlagSet, string, string) {
		return func(fs *flag.FlagSet, n, u string) { fs.IntVar(p, n, def, u) }
	}
	list := []option{
		{"addr", "CONDUIT_ADDR", "address to listen on", str(&c.Addr, ":8080")},
		{"data-dir", "CONDUIT_DATA_DIR", "directory for the embedded database and the signing key", str(&c.DataDir, "./data")},
		{"from-data-dir", "CONDUIT_FROM_DATA_DIR", "the stage-1 data directory whose SQLite database is copied", str(&c.FromDataDir, "./data")},
		{"database-url", "CONDUIT_DATABASE_URL", "database URL: postgres://… for PostgreSQL; empty for embedded SQLite in the data dir", str(&c.DatabaseURL, "")},
		{"jwt-keys", "CONDUIT_JWT_KEYS", "token signing keys as id:base64secret[,id:base64secret…]; the first signs. Empty: a key generated once in the data dir", str(&c.JWTKeys, "")},
		{"token-ttl", "CONDUIT_TOKEN_TTL", "how long a sign-in token stays valid", dur(&c.TokenTTL, 30*24*time.Hour)},
		{"log-format", "CONDUIT_LOG_FORMAT", "log format: text or json", str(&c.LogFormat, "text")},
		{"log-level", "CONDUIT_LOG_LEVEL", "log level: debug, info, warn or error", str(&c.LogLevel, "info")},
		{"shutdown-timeout", "CONDUIT_SHUTDOWN_TIMEOUT", "how long in-flight requests may take to finish on shutdown", dur(&c.ShutdownTimeout, 15*time.Second)},
		{"drain-delay", "CONDUIT_DRAIN_DELAY", "how long to keep serving after SIGTERM while /readyz fails, so a load balancer moves traffic away", dur(&c.DrainDelay, 0)},
		{"cache-items", "CONDUIT_CACHE_ITEMS", "how many values the in-process cache holds (0: no cache)", num(&c.CacheItems, 10000)},
		{"cache-url", "CONDUIT_CACHE_URL", "shared cache: redis://[user:password@]host:port[/db] (stage 5); the in-process cache becomes its near cache. Empty: in-process cache only", str(&c.CacheURL, "")},
		{"cache-timeout", "CONDUIT_CACHE_TIMEOUT", "with --cache-url: timeout of one cache read; a slower Redis counts as a miss and reads go to the database", dur(&c.CacheTimeout, 10*time.Millisecond)},
		{"cache-ttl", "CONDUIT_CACHE_TTL", "with --cache-url: how long a cached value, and an anonymous list page kept in a node's memory, lives (each less up to a fifth, at random); writes invalidate them before that", dur(&c.CacheTTL, 6*time.Hour)},
		{"cache-list-ttl", "CONDUIT_CACHE_LIST_TTL", "with --cache-url: how long an anonymous list page kept in Redis for every node lives there (less up to a fifth, at random); the versions of what it shows keep it fresh, so a write makes it a miss at once, and this only bounds Redis's memory. Each node keeps the pages it serves in memory for --cache-ttl", dur(&c.CacheListTTL, 24*time.Hour)},
		{"bcrypt-cost", "CONDUIT_BCRYPT_COST", "bcrypt cost for new password hashes (4-16; below 10 only for tests)", num(&c.BcryptCost, 10)},
		{"max-inflight", "CONDUIT_MAX_INFLIGHT", "requests one node serves at once; beyond that and a short queue it answers 503 with Retry-After (0: no limit)", num(&c.MaxInFlight, 128)},
		{"max-queue", "CONDUIT_MAX_QUEUE", "requests that may wait for a free slot when --max-inflight are running", num(&c.MaxQueue, 64)},
		{"queue-wait", "CONDUIT_QUEUE_WAIT", "longest a request waits for a free slot before it is shed with 503", dur(&c.QueueWait, 100*time.Millisecond)},
		{"trusted-proxies", "CONDUIT_TRUSTED_PROXIES", "comma-separated addresses or CIDR prefixes of the load balancers whose X-Forwarded-For is believed (empty: nobody)", str(&c.TrustedProxies, "")},
		{"idempotency-ttl", "CONDUIT_IDEMPOTENCY_TTL", "how long the response to a write with an Idempotency-Key is kept for repeats", dur(&c.IdempotencyTTL, 24*time.Hour)},
		{"db-max-conns", "CONDUIT_DB_MAX_CONNS", "PostgreSQL: connection pool size per process (0: 4 per CPU, at least 10)", num(&c.DBMaxConns, 0)},
		{"db-conn-lifetime", "CONDUIT_DB_CONN_LIFETIME", "PostgreSQL: close pooled connections older than this", dur(&c.DBConnLifetime, 30*time.Minute)},
		{"db-statement-timeout", "CONDUIT_DB_STATEMENT_TIMEOUT", "PostgreSQL: statement_timeout of every session; a query or transaction also gives up client-side after this plus the connect timeout", dur(&c.DBStatementTimeout, 5*time.Second)},
		{"db-connect-timeout", "CONDUIT_DB_CONNECT_TIMEOUT", "PostgreSQL: how long to wait for a new connection", dur(&c.DBConnectTimeout, 3*time.Second)},
		{"login-window", "CONDUIT_LOGIN_WINDOW", "the window in which failed sign-ins are counted", dur(&c.LoginWindow, 15*time.Minute)},
		{"login-max-per-addr", "CONDUIT_LOGIN_MAX_PER_ADDR", "failed sign-ins one client address may make per window; beyond, its sign-ins get 429 (0: no limit)", num(&c.LoginMaxPerAddr, 30)},
		{"login-max-per-account", "CONDUIT_LOGIN_MAX_PER_ACCOUNT", "failed sign-ins an account may take per window; beyond, only addresses without failed sign-ins may try it (0: no limit)", num(&c.LoginMaxPerAcct, 10)},
		{"signup-window", "CONDUIT_SIGNUP_WINDOW", "the window in which sign-ups are counted", dur(&c.SignupWindow, time.Hour)},
		{"signup-max-per-addr", "CONDUIT_SIGNUP_MAX_PER_ADDR", "sign-ups one client address may attempt per window; beyond, 429 (0: no limit)", num(&c.SignupMaxPerAddr, 20)},
		{"replica-urls", "CONDUIT_REPLICA_URLS", "PostgreSQL read replicas: comma-separated postgres:// URLs; a URL with several hosts (postgres://h1:5432,h2:5432/db) is one replica per host. Empty: every read goes to --database-url", str(&c.ReplicaURLs, "")},
		{"replica-max-lag", "CONDUIT_REPLICA_MAX_LAG", "a replica further behind the primary than this gets no reads", dur(&c.ReplicaMaxLag, 5*time.Second)},
		{"public-url", "CONDUIT_PUBLIC_URL", "scheme and host clients reach the site at (e.g. https://conduit.example), for absolute URLs in the API and feeds; empty: taken from each request", str(&c.PublicURL, "")},
		{"media-url", "CONDUIT_MEDIA_URL", "where uploaded avatars are kept: s3://KEY:SECRET@host:port/bucket (an S3-compatible object store; ?tls=false for plain HTTP, &region=…); empty: <data-dir>/media", str(&c.MediaURL, "")},
		{"queue-url", "CONDUIT_QUEUE_URL", "message queue: nats://host:port[,nats://…] for NATS JetStream (stage 7); jobs go from the outbox to it and workers consume them. Empty: workers run jobs straight from the outbox in the database", str(&c.QueueURL, "")},
		{"workers", "CONDUIT_WORKERS", "jobs (feed fan-out, notifications) this process runs at once; with serve, 0 runs none (then `conduit worker` processes must run)", num(&c.Workers, DefaultWorkers)},
		{"fanout-max-followers", "CONDUIT_FANOUT_MAX_FOLLOWERS", "authors with more followers than this are not fanned out to timelines on write; their articles are merged into feeds on read", num(&c.FanoutMaxFollowers, 10000)},
		{"timeline-cap", "CONDUIT_TIMELINE_CAP", "how many of the newest articles a home timeline keeps; older feed pages are read from the follows", num(&c.TimelineCap, 1000)},
		{"job-lease", "CONDUIT_JOB_LEASE", "how long a job belongs to the worker that took it; if that worker dies, the job runs again after this", dur(&c.JobLease, time.Minute)},
		{"job-max-attempts", "CONDUIT_JOB_MAX_ATTEMPTS", "attempts of a failing job (with growing delays, 1 s doubling up to 5 min) before it becomes a dead letter", num(&c.JobMaxAttempts, 8)},
		{"asset-url", "CONDUIT_ASSET_URL", "base URL where pages link the static files, e.g. https://cdn.example.com (a CDN that fetches /static/ from this site); empty: this host", str(&c.AssetURL, "")},
		{"edge-purge-url", "CONDUIT_EDGE_PURGE_URL", "comma-separated purge addresses of the edge caches (e.g. http://10.0.0.7:6081/): after each write its edge keys are sent there (PURGE with Surrogate-Key, see deploy/varnish/conduit.vcl); empty: no purges", str(&c.EdgePurgeURLs, "")},
		{"shared-max-age", "CONDUIT_SHARED_MAX_AGE", "how long shared caches (a CDN, Varnish) may keep an answer every anonymous visitor gets alike (s-maxage); 0: no shared caching", dur(&c.SharedMaxAge, time.Minute)},
		{"admin-addr", "CONDUIT_ADMIN_ADDR", "address of a separate, private listener serving Prometheus metrics on /metrics (e.g. 10.0.0.5:9090 on a private network); empty: no metrics. Never expose it publicly", str(&c.AdminAddr, "")},
		{"memory-limit", "CONDUIT_MEMORY_LIMIT", "soft memory limit of the Go heap: a size (768MiB, 2GiB), a share of the memory found (60%), or off; empty: 70% of the cgroup's memory limit, else 25% of the machine's memory up to 384 MiB, less SQLite's page caches with the embedded database. GOMEMLIMIT in the environment wins", str(&c.MemoryLimit, "")},
		{"debug-addr", "CONDUIT_DEBUG_ADDR", "address of a separate listener serving Go profiles under /debug/pprof/ (e.g. 127.0.0.1:6060; the same address as --admin-addr: one listener for both); empty: off. Never expose it publicly", str(&c.DebugAddr, "")},
	}
	m := make(map[string]option, len(list))
	for _, o := range list {
		m[o.flag] = o
	}
	return m
}

// Parse reads the named settings from args and getenv into a Config. Unknown
// flags, bad values and stray arguments are errors; -h prints usage to out
// and returns flag.ErrHelp.
func Parse(cmd, summary string, names []string, args []string, getenv func(string) string, out io.Writer) (Config, error) {
	return ParseWith(cmd, summary, names, args, getenv, out, nil)
}

// ParseWith is Parse for a command that has flags of its own besides the
// shared settings: extra registers them on the same flag set (they have no
// environment variables).
func ParseWith(cmd, summary string, names []string, args []string, getenv func(string) string, out io.Writer, extra func(fs *flag.FlagSet)) (Config, error) {
	var c Config
	opts := c.options()
	fs := flag.NewFlagSet("conduit "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: conduit %s [flags]\n\n%s\n", cmd, summary)
		if len(names) > 0 {
			fmt.Fprintf(out, "\nFlags (each also read from the environment variable shown):\n")
			for _, n := range names {
				o := opts[n]
				printFlag(out, fs.Lookup(n), "--"+n+" ("+o.env+")")
			}
		}
		if extra != nil {
			heading := "Flags of this command:"
			if len(names) == 0 {
				heading = "Flags:"
			}
			fmt.Fprintf(out, "\n%s\n", heading)
			fs.VisitAll(func(f *flag.Flag) {
				if !slices.Contains(names, f.Name) {
					printFlag(out, f, "--"+f.Name)
				}
			})
		}
	}
	for _, n := range names {
		o, ok := opts[n]
		if !ok {
			panic("config: unknown option " + n)
		}
		o.set(fs, n, o.usage)
		if v := getenv(o.env); v != "" {
			if err := fs.Set(n, v); err != nil {
				return c, fmt.Errorf("%s=%q: %w", o.env, v, err)
			}
		}
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("conduit %s: unexpected argument %q (see --help)", cmd, fs.Arg(0))
	}
	return c, c.validate()
}

// printFlag prints one flag of a usage text: its name as shown, its usage
// and its default (unless empty or false).
func printFlag(out io.Writer, f *flag.Flag, name string) {
	fmt.Fprintf(out, "  %s\n        %s", name, f.Usage)
	b, isBool := f.Value.(interface{ IsBoolFlag() bool })
	if f.DefValue != "" && !(isBool && b.IsBoolFlag() && f.DefValue == "false") {
		fmt.Fprintf(out, " (default %q)", f.DefValue)
	}
	fmt.Fprintln(out)
}

func (c *Config) validate() error {
	var errs []error
	if c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat))
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", c.LogLevel))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("--database-url must start with postgres:// (leave it empty for the embedded SQLite database)"))
	}
	for _, u := range c.ReplicaURLList() {
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			errs = append(errs, errors.New("--replica-urls must be postgres:// URLs separated by commas"))
			break
		}
	}
	if c.ReplicaMaxLag < 0 {
		errs = append(errs, errors.New("--replica-max-lag must not be negative"))
	}
	if c.DBMaxConns < 0 {
		errs = append(errs, errors.New("--db-max-conns must not be negative"))
	}
	if c.TokenTTL < 0 || c.ShutdownTimeout < 0 || c.DrainDelay < 0 ||
		c.DBConnLifetime < 0 || c.DBStatementTimeout < 0 || c.DBConnectTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxInFlight < 0 || c.MaxQueue < 0 || c.QueueWait < 0 || c.IdempotencyTTL < 0 {
		errs = append(errs, errors.New("--max-inflight, --max-queue, --queue-wait and --idempotency-ttl must not be negative"))
	}
	if c.CacheURL != "" && !strings.HasPrefix(c.CacheURL, "redis://") && !strings.HasPrefix(c.CacheURL, "rediss://") && !strings.HasPrefix(c.CacheURL, "unix://") {
		errs = append(errs, errors.New("--cache-url must start with redis://, rediss:// or unix://"))
	}
	if c.AssetURL != "" {
		if u, err := url.Parse(c.AssetURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("--asset-url must be an http(s) URL without query, e.g. https://cdn.example.com, not %q", c.AssetURL))
		}
	}
	if c.SharedMaxAge < 0 {
		errs = append(errs, errors.New("--shared-max-age must not be negative"))
	}
	if c.CacheTimeout < 0 {
		errs = append(errs, errors.New("--cache-timeout must not be negative"))
	}
	if c.CacheTTL != 0 && c.CacheTTL < time.Second { // 0: the command has no such flag
		errs = append(errs, errors.New("--cache-ttl must be at least 1s"))
	}
	if c.CacheListTTL != 0 && c.CacheListTTL < time.Second {
		errs = append(errs, errors.New("--cache-list-ttl must be at least 1s"))
	}
	if c.LoginWindow < 0 || c.SignupWindow < 0 || c.LoginMaxPerAddr < 0 || c.LoginMaxPerAcct < 0 || c.SignupMaxPerAddr < 0 {
		errs = append(errs, errors.New("--login-* and --signup-* settings must not be negative"))
	}
	if (c.LoginWindow == 0 && (c.LoginMaxPerAddr > 0 || c.LoginMaxPerAcct > 0)) || (c.SignupWindow == 0 && c.SignupMaxPerAddr > 0) {
		errs = append(errs, errors.New("--login-window and --signup-window must be positive while their limits are on"))
	}
	if c.QueueURL != "" && !strings.HasPrefix(c.QueueURL, "nats://") && !strings.HasPrefix(c.QueueURL, "tls://") {
		errs = append(errs, errors.New("--queue-url must start with nats:// or tls://"))
	}
	if c.Workers < 0 || c.FanoutMaxFollowers < 0 || c.TimelineCap < 0 || c.JobLease < 0 || c.JobMaxAttempts < 0 {
		errs = append(errs, errors.New("--workers, --fanout-max-followers, --timeline-cap, --job-lease and --job-max-attempts must not be negative"))
	}
	if c.CacheItems < 0 {
		errs = append(errs, errors.New("--cache-items must not be negative"))
	}
	if c.BcryptCost != 0 && (c.BcryptCost < 4 || c.BcryptCost > 16) {
		errs = append(errs, fmt.Errorf("--bcrypt-cost must be between 4 and 16, not %d", c.BcryptCost))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("--public-url must be http(s)://host[:port], not %q", c.PublicURL))
		}
	}
	if c.MediaURL != "" && !strings.HasPrefix(c.MediaURL, "s3://") {
		errs = append(errs, errors.New("--media-url must start with s3:// (leave it empty to keep uploads in the data dir)"))
	}
	return errors.Join(errs...)
}

// MediaDir is where uploads are kept without --media-url.
func (c Config) MediaDir() string { return filepath.Join(c.DataDir, "media") }

// SQLitePath is where the embedded database lives.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "conduit.db") }

// KeyFile is where a generated signing key is kept.
func (c Config) KeyFile() string { return filepath.Join(c.DataDir, "jwt.keys") }

// DatabaseDescription names the database without its password, for logs.
func (c Config) DatabaseDescription() string {
	if c.DatabaseURL == "" {
		return "sqlite " + c.SQLitePath()
	}
	return MaskURL(c.DatabaseURL)
}

// ReplicaURLList splits ReplicaURLs. A comma also separates the hosts of
// one URL (postgres://h1:5432,h2:5432/db), so a piece that does not start
// a new URL belongs to the one before it.
func (c Config) ReplicaURLList() []string {
	var urls []string
	for _, p := range strings.Split(c.ReplicaURLs, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
		case strings.Contains(p, "://") || len(urls) == 0:
			urls = append(urls, p)
		default:
			urls[len(urls)-1] += "," + p
		}
	}
	return urls
}

// MaskURL hides the password in a URL's user info and in a "password"
// query parameter (libpq accepts both).
func MaskURL(s string) string {
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at >= 0 && scheme >= 0 && at > scheme {
		if name, _, ok := strings.Cut(s[scheme+3:at], ":"); ok {
			s = s[:scheme+3] + name + ":***" + s[at:]
		}
	}
	base, query, ok := strings.Cut(s, "?")
	if !ok {
		return s
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		if k, _, _ := strings.Cut(p, "="); strings.EqualFold(k, "password") {
			params[i] = k + "=***"
		}
	}
	return base + "?" + strings.Join(params, "&")
}

// EdgePurgeList is --edge-purge-url split at commas.
func (c Config) EdgePurgeList() []string {
	var out []string
	for u := range strings.SplitSeq(c.EdgePurgeURLs, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
