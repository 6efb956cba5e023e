// Command fleet runs the several-processes scenario of package fleet once per strategy and prints
// its accounting: cmd/api built once, N instances on a new database of the Postgres server
// STOCKBUS_POSTGRES_URL names (dropped at the end), one embedded NATS server, one SMTP sink, the
// orders of one hot sku spread over the instances over HTTP, and one instance killed with SIGKILL
// mid-run and restarted. Beside the accounting it prints the client-side latency and the servers'
// histograms (GET /stats) merged over every life. scripts/fleet runs it.
//
// Exit status: 0 when every run's accounting is exact (no phantom delivery, no answer the event
// log contradicts, and under the outbox nothing lost), 1 otherwise or on a failure, 2 for a bad
// flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/stockbus/stockbus/internal/fleet"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

var (
	errUsage   = errors.New("usage")
	errInexact = errors.New("accounting not exact")
)

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stdout)
	strategies := fs.String("strategy", "sync,outbox", "strategies to run, comma-separated: sync, outbox")
	cfg := fleet.Config{}
	fs.IntVar(&cfg.Instances, "instances", 2, "API processes")
	fs.IntVar(&cfg.Orders, "orders", 1000, "orders of one unit, one request each")
	fs.IntVar(&cfg.Stock, "stock", 500, "units of the one batch")
	fs.IntVar(&cfg.Workers, "workers", 8, "client goroutines sending at once")
	fs.Uint64Var(&cfg.Seed, "seed", 16, "chooses the instance killed and the order before which it is")
	fs.IntVar(&cfg.Relays, "relays", 2, "relays per instance under the outbox")
	fs.DurationVar(&cfg.Lease, "lease", 3*time.Second, "relay lease: how long the killed relays' rows wait")
	fs.DurationVar(&cfg.MailTimeout, "mail-timeout", time.Second, "under the outbox: how long the surviving relays wait for the reply the sink holds back at the kill")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	names := strings.Split(*strategies, ",")
	for _, s := range names {
		if s != "sync" && s != "outbox" {
			return fmt.Errorf("%w: -strategy %q: want sync, outbox or both", errUsage, s)
		}
	}
	if cfg.Instances < 1 || cfg.Orders < 1 || cfg.Stock < 1 || cfg.Workers < 1 || cfg.Relays < 1 || cfg.Lease <= 0 || cfg.MailTimeout <= 0 {
		return fmt.Errorf("%w: -instances, -orders, -stock, -workers and -relays must be 1 or more, -lease and -mail-timeout positive", errUsage)
	}
	server := os.Getenv(fleet.URLVariable)
	if server == "" {
		return fmt.Errorf("%s is not set: start a server with scripts/postgres", fleet.URLVariable)
	}
	dir, err := os.MkdirTemp("", "stockbus-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if cfg.Binary, err = fleet.Build(ctx, dir); err != nil {
		return err
	}
	cfg.DrainBound = 2 * time.Minute
	var inexact []string
	for _, s := range names {
		db, drop, err := fleet.CreateDatabase(ctx, server)
		if err != nil {
			return err
		}
		cfg.Database, cfg.Strategy = db, s
		rep, err := fleet.Run(ctx, cfg)
		if err := errors.Join(err, drop()); err != nil {
			return err
		}
		fmt.Fprintln(stdout, rep)
		if len(rep.Phantoms) > 0 || len(rep.Mismatches) > 0 || (s == "outbox" && len(rep.Lost) > 0) {
			inexact = append(inexact, s)
		}
	}
	if len(inexact) > 0 {
		return fmt.Errorf("%w under %s", errInexact, strings.Join(inexact, ", "))
	}
	return nil
}
