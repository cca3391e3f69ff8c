package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/bench"
	"github.com/conduit-dev/conduit/internal/config"
)

const benchSummary = `Drives a running Conduit server with a mix of browser page views and mobile
API calls (~94% reads, ~6% writes; signed-in and anonymous) and prints
per-endpoint and total req/s, p50/p90/p99/max latency and errors.

With --rate it is open loop: requests are due on a fixed schedule and
latency is measured from when each was due, so queueing is not hidden.
Without --rate it is closed loop with --connections requests in flight,
which finds the sustainable throughput. --baseline then measures a trivial
handler serving bodies of the same mean size, in this process, the same way,
and prints the ratio: the share of this machine's HTTP ceiling reached.

Seeded users (conduit seed) sign in as <username>@example.com with --password.

--mix writes needs no seeded data and no Conduit-only endpoint: it registers
its own users through the API (one per connection; run the server without a
sign-up limit) and sends only article creates, comments, favorites and
follows, so it measures any RealWorld implementation the same way (the API
under --url plus --api-prefix; "" for one serving it at the root).`

func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg bench.Config
	var target, jsonFile string
	var minHitRatio float64
	// No shared settings: bench talks to a server, not to the database.
	_, err := config.ParseWith("bench", benchSummary, nil, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&target, "url", "http://127.0.0.1:8080", "base URL of the server")
		fs.StringVar(&cfg.Mix, "mix", "full", "traffic mix: full (browser pages and API), api (API only), anonymous (what anonymous visitors send of the full mix: what an edge may answer) or writes (writes only, through the RealWorld API alone: any implementation)")
		fs.StringVar(&cfg.APIPrefix, "api-prefix", "/api", "--mix writes: the API's path under --url")
		fs.StringVar(&cfg.AcceptEncoding, "accept-encoding", "", "Accept-Encoding sent with every request (e.g. gzip, or \"gzip, deflate, br, zstd\" as a browser); empty: none, bodies come uncompressed")
		fs.Func("server-metrics", "Prometheus /metrics URL of a server under test (its --admin-addr), repeatable or comma-separated: its process CPU time per request is reported", func(s string) error {
			for u := range strings.SplitSeq(s, ",") {
				if u = strings.TrimSpace(u); u != "" {
					cfg.ServerMetrics = append(cfg.ServerMetrics, u)
				}
			}
			return nil
		})
		fs.StringVar(&cfg.Pages.Home, "page-home", bench.DefaultPages.Home, "path of the home page")
		fs.StringVar(&cfg.Pages.Tag, "page-tag", bench.DefaultPages.Tag, "path of a tag page; {tag} is replaced")
		fs.StringVar(&cfg.Pages.Article, "page-article", bench.DefaultPages.Article, "path of an article page; {slug} is replaced")
		fs.StringVar(&cfg.Pages.Profile, "page-profile", bench.DefaultPages.Profile, "path of a profile page; {username} is replaced")
		fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second (0: closed loop)")
		fs.IntVar(&cfg.Connections, "connections", 64, "closed loop: requests in flight; open loop: the most in flight")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to measure")
		fs.DurationVar(&cfg.Warmup, "warmup", 0, "load sent first and not measured, so that the server's caches are as on a running site (its requests drawn apart from the measured ones); 0: none, the server's first requests are measured")
		fs.IntVar(&cfg.Logins, "logins", 20, "how many seeded users to sign in at the start")
		fs.StringVar(&cfg.Password, "password", "password", "password of the seeded users")
		fs.Float64Var(&cfg.SignedIn, "signed-in", 0.3, "share of the API reads sent by signed-in users")
		fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout (counted as an error)")
		fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the request choices")
		fs.BoolVar(&cfg.Baseline, "baseline", false, "also measure a trivial handler of the same response size and print the ratio")
		fs.StringVar(&jsonFile, "json", "", "also write the results as JSON to this file")
		fs.Float64Var(&minHitRatio, "min-hit-ratio", 0, "fail unless at least this share (0-1) of the answers were edge cache hits (X-Cache: HIT or HIT-STALE)")
	})
	if err != nil {
		return err
	}
	if cfg.Rate < 0 || cfg.Connections < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		return errors.New("--rate and --warmup must not be negative, --connections must be positive, --duration must be positive")
	}
	if cfg.BaseURL, err = bench.ParseBaseURL(target); err != nil {
		return err
	}
	cfg.Log = stderr
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	bench.Print(stdout, rep)
	if jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if rep.Total.Errors > 0 {
		return fmt.Errorf("%d of %d requests failed", rep.Total.Errors, rep.Total.Requests)
	}
	if r := rep.HitRatio(); minHitRatio > 0 && r < minHitRatio {
		return fmt.Errorf("edge hit ratio %.1f%% is below --min-hit-ratio %.1f%%", 100*r, 100*minHitRatio)
	}
	return nil
}
