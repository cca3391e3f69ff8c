package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/queue"
	"github.com/conduit-dev/conduit/internal/store"
)

const jobsUsage = `Usage: conduit jobs <subcommand> [flags]

Inspects and repairs the job queue (stage 7): the outbox of jobs not done
yet and the dead letters (jobs that failed every attempt).

Subcommands:
  stats            jobs pending and dead per kind, the oldest pending job's age,
                   and with --queue-url what waits in NATS
  list             the pending jobs (or with --dead the dead letters)
  retry            put dead letters back into the queue (--id N or --all)
  drop             delete dead letters for good (--id N or --all)
  build-timelines  enqueue a timeline.build job for every user without a
                   built home timeline (users from before stage 7)

Run 'conduit jobs <subcommand> --help' for its flags.
`

var jobsDBFlags = []string{"data-dir", "database-url", "db-connect-timeout"}

// jobsCmd is the `conduit jobs` command.
func jobsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, jobsUsage)
		return errors.New("no subcommand given")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "stats":
		return jobsStats(ctx, rest, getenv, stdout, stderr)
	case "list":
		return jobsList(ctx, rest, getenv, stdout, stderr)
	case "retry", "drop":
		return jobsDead(ctx, sub, rest, getenv, stdout, stderr)
	case "build-timelines":
		return jobsBuildTimelines(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, jobsUsage)
		return nil
	}
	fmt.Fprint(stderr, jobsUsage)
	return fmt.Errorf("unknown subcommand %q of conduit jobs", sub)
}

// openJobsDB parses a subcommand's flags and opens the database (failing
// at once when it cannot be reached, like migrate).
func openJobsDB(ctx context.Context, sub, summary string, names, args []string, getenv func(string) string, stderr io.Writer,
	extra func(fs *flag.FlagSet)) (config.Config, *store.DB, error) {
	cfg, err := config.ParseWith("jobs "+sub, summary, names, args, getenv, stderr, extra)
	if err != nil {
		return cfg, nil, err
	}
	db, err := openStore(ctx, cfg, nil)
	if err != nil {
		return cfg, nil, err
	}
	if err := db.CheckSchema(ctx); err != nil {
		db.Close()
		return cfg, nil, err
	}
	return cfg, db, nil
}

func jobsStats(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, db, err := openJobsDB(ctx, "stats", "Prints, per kind of job, how many wait in the outbox, the age of the oldest,\nand how many are dead letters; with --queue-url, what waits in NATS JetStream.",
		append(jobsDBFlags, "queue-url"), args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	stats, err := db.JobStats(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "kind\tpending\toldest\tdead")
	for _, s := range stats {
		age := "-"
		if s.Pending > 0 {
			age = time.Since(s.Oldest).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", s.Kind, s.Pending, age, s.Dead)
	}
	if len(stats) == 0 {
		fmt.Fprintln(tw, "(none)\t0\t-\t0")
	}
	tw.Flush()
	if cfg.QueueURL == "" {
		return nil
	}
	n, err := queue.DialNATS(cfg.QueueURL, queue.Options{})
	if err != nil {
		return err
	}
	defer n.Close()
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	waiting, inFlight, err := n.Pending(qctx)
	if err != nil {
		return fmt.Errorf("NATS: %w", err)
	}
	fmt.Fprintf(stdout, "NATS stream %s: %d waiting, %d being worked on\n", queue.StreamName, waiting, inFlight)
	return nil
}

func jobsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var dead bool
	var limit int
	_, db, err := openJobsDB(ctx, "list", "Lists the jobs waiting in the outbox, oldest first (with --dead: the dead letters).\nJobs already relayed to NATS are not in the outbox: see 'conduit jobs stats'.",
		jobsDBFlags, args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.BoolVar(&dead, "dead", false, "list the dead letters instead")
			fs.IntVar(&limit, "limit", 50, "list at most this many")
		})
	if err != nil {
		return err
	}
	defer db.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	if dead {
		list, err := db.DeadJobs(ctx, limit)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "id\tkind\tkey\tattempts\tdied\tlast error")
		for _, d := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Kind, d.Key, d.Attempts, d.DiedAt.Format(time.RFC3339), oneLine(d.LastError))
		}
		return nil
	}
	list, err := db.PendingJobs(ctx, limit)
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "id\tkind\tkey\tattempts\tcreated\tdue\tlast error")
	for _, p := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", p.ID, p.Kind, p.Key, p.Attempts, p.CreatedAt.Format(time.RFC3339),
			p.RunAt.Format(time.RFC3339), oneLine(p.LastError))
	}
	return nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func jobsDead(ctx context.Context, sub string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var id int64
	var all bool
	summary := "Puts dead letters back into the queue as new jobs (they run again from their first\nattempt). Give --id N for one, or --all."
	if sub == "drop" {
		summary = "Deletes dead letters for good. Give --id N for one, or --all."
	}
	_, db, err := openJobsDB(ctx, sub, summary, jobsDBFlags, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.Int64Var(&id, "id", 0, "the dead letter's id (see 'conduit jobs list --dead')")
		fs.BoolVar(&all, "all", false, "every dead letter")
	})
	if err != nil {
		return err
	}
	defer db.Close()
	if (id == 0) == !all {
		return errors.New("give either --id N or --all")
	}
	var n int64
	if sub == "retry" {
		n, err = db.RetryDeadJobs(ctx, id)
	} else {
		n, err = db.DropDeadJobs(ctx, id)
	}
	if err != nil {
		return err
	}
	if id != 0 && n == 0 {
		return fmt.Errorf("no dead letter with id %d", id)
	}
	verb := map[string]string{"retry": "queued again", "drop": "dropped"}[sub]
	fmt.Fprintf(stdout, "%d dead letter(s) %s\n", n, verb)
	return nil
}

func jobsBuildTimelines(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var batch int
	var only string
	var bulk bool
	cfg, db, err := openJobsDB(ctx, "build-timelines", "Enqueues a timeline.build job for every user whose home timeline is not built\n(users from before stage 7, or a database copied or seeded in bulk). Until a\nuser's timeline is built, their feed is read from the follows, as before:\nright, but its cost grows with the accounts they follow. Workers build the\ntimelines; watch 'conduit jobs stats'. With --bulk, builds every timeline\nhere instead, set-based (as conduit seed does): only on a database where no\nuser has one yet, while nothing else writes to it.",
		append(jobsDBFlags, "db-statement-timeout", "fanout-max-followers", "timeline-cap"), args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.IntVar(&batch, "batch", 1000, "users enqueued per transaction")
			fs.StringVar(&only, "users", "", "comma-separated user ids: build (or rebuild) only these")
			fs.BoolVar(&bulk, "bulk", false, "build every timeline in this process, set-based (a database loaded in bulk, idle)")
		})
	if err != nil {
		return err
	}
	defer db.Close()
	if bulk {
		start := time.Now()
		tl, err := db.BuildTimelinesBulk(ctx, conduit.FeedOptions{MaxFollowers: cfg.FanoutMaxFollowers, TimelineCap: cfg.TimelineCap},
			func(p store.BulkTimelines) {
				fmt.Fprintf(stderr, "timelines: %d users, %d rows (%s)\n", p.Users, p.Rows, time.Since(start).Round(time.Second))
			})
		if err != nil {
			return err
		}
		took := time.Since(start)
		fmt.Fprintf(stdout, "timelines: %d users, %d rows, %d celebrities in %s (%.0f rows/s, %.0f users/s)\n",
			tl.Users, tl.Rows, tl.Celebrities, took.Round(time.Millisecond), float64(tl.Rows)/took.Seconds(), float64(tl.Users)/took.Seconds())
		return nil
	}
	if batch < 1 {
		return errors.New("--batch must be at least 1")
	}
	if only != "" {
		var jobs []conduit.Job
		for _, f := range strings.Split(only, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("--users: %q is not a user id", f)
			}
			jobs = append(jobs, conduit.TimelineBuildJob(id))
		}
		if err := db.Enqueue(ctx, jobs...); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enqueued %d timeline.build job(s)\n", len(jobs))
		return nil
	}
	total := 0
	for after := int64(0); ; {
		users, err := db.UsersWithoutTimeline(ctx, after, batch)
		if err != nil {
			return err
		}
		if len(users) == 0 {
			break
		}
		jobs := make([]conduit.Job, len(users))
		for i, u := range users {
			jobs[i] = conduit.TimelineBuildJob(u)
		}
		if err := db.Enqueue(ctx, jobs...); err != nil {
			return err
		}
		total += len(users)
		after = users[len(users)-1]
	}
	fmt.Fprintf(stdout, "enqueued %d timeline.build job(s)\n", total)
	return nil
}
