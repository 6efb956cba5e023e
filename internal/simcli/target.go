package simcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/httpload"
	"github.com/stockbus/stockbus/sim/load"
)

// targetOptions are the flags of a run against HTTP targets.
type targetOptions struct {
	urls    []string
	timeout time.Duration
	noStats bool
}

// targetFlags registers -target and the flags that go with it.
func targetFlags(fs *flag.FlagSet, opt *targetOptions) {
	fs.Func("target", "drive the book's HTTP API at this base URL instead of the in-process stack (e.g. http://127.0.0.1:8080, as go run ./cmd/api serves); repeat it or separate URLs by commas for several instances of one store: the batches go through the first, order k to target (k-1) mod N", func(s string) error {
		for u := range strings.SplitSeq(s, ",") {
			u = strings.TrimSpace(u)
			if _, err := httpapi.NewClient(u); err != nil {
				return err
			}
			opt.urls = append(opt.urls, u)
		}
		return nil
	})
	fs.DurationVar(&opt.timeout, "target-timeout", httpload.DefaultTimeout, "with -target: how long one request may take before its outcome counts as unknown")
	fs.BoolVar(&opt.noStats, "no-stats", false, "with -target: do not fetch the targets' GET /stats (for an API that does not serve it)")
}

// targetFlagsOK are the flags that mean something with -target: the workload, the load model,
// the output format and -target's own. Every other flag sets up the in-process stack (its store,
// dispatch, faults) or a report only that stack gives.
var targetFlagsOK = []string{
	"target", "target-timeout", "no-stats", "format",
	"workload", "seed", "skus", "batches", "warehouse", "eta-spread", "batch-qty", "order-qty", "demand",
	"popularity", "zipf-s", "orders", "duration", "warmup", "bad-input",
	"model", "workers", "rate", "arrivals", "backlog",
}

// checkTarget refuses a flag that makes no sense with -target, naming it, and a format other
// than text or json.
func checkTarget(fs *flag.FlagSet, format string) error {
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(targetFlagsOK, f.Name) {
			bad = append(bad, f.Name)
		}
	})
	if len(bad) > 0 {
		return &sim.ConfigError{Field: bad[0], Reason: "makes no sense with -target: the API under load has its own store, mailer, broker, dispatch and faults (with -target: -" +
			strings.Join(targetFlagsOK[4:], ", -") + ", -format text or json, -target-timeout, -no-stats)"}
	}
	if format != "text" && format != "json" {
		return &sim.ConfigError{Field: "format", Reason: fmt.Sprintf("with -target, want text or json, got %q", format)}
	}
	return nil
}

// targetFlagsAlone refuses -target's own flags without -target.
func targetFlagsAlone(opt options) error {
	for _, name := range []string{"target-timeout", "no-stats"} {
		if opt.given[name] {
			return &sim.ConfigError{Field: name, Reason: "only with -target"}
		}
	}
	return nil
}

// targetReport is the JSON of a run against HTTP targets.
type targetReport struct {
	Seed       int64   `json:"seed"`
	PlanDigest string  `json:"plan_digest"`
	Orders     int     `json:"orders_planned"`
	Env        sim.Env `json:"env"`
	*httpload.Report
}

// runTarget runs the workload against the -target URLs and prints the report. Exit status: 2 for
// a bad flag, 1 when the run could not start (the seeding failed) or the servers' stats could
// not be read (after the report), 130 when interrupted (after the report).
func runTarget(ctx context.Context, cfg sim.Config, opt options, fs *flag.FlagSet, stdout, stderr io.Writer) int {
	usage := func(err error) int { fmt.Fprintln(stderr, "simulate:", err); return exitUsage }
	if err := checkTarget(fs, opt.format); err != nil {
		return usage(err)
	}
	if err := cfg.Validate(); err != nil {
		return usage(err)
	}
	plan, err := sim.NewPlan(cfg)
	if err != nil {
		return usage(err)
	}
	hc := httpload.Config{Targets: opt.target.urls, Plan: plan, Timeout: opt.target.timeout, NoStats: opt.target.noStats}
	if cfg.Model == sim.Closed {
		hc.Closed = &load.Closed{Workers: cfg.Workers, Orders: cfg.Orders, Duration: cfg.Duration, WarmupOrders: cfg.WarmupOrders, Warmup: cfg.Warmup}
	} else {
		hc.Open = &load.Open{Workers: cfg.Workers, Backlog: cfg.Backlog, Orders: cfg.Orders, Duration: cfg.Duration, Rate: cfg.Rate,
			Poisson: cfg.Arrivals == sim.Poisson, Seed: cfg.Seed, WarmupOrders: cfg.WarmupOrders, Warmup: cfg.Warmup}
	}
	rep, err := httpload.Run(ctx, hc)
	if errors.Is(err, httpload.ErrConfig) {
		return usage(err)
	}
	if err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return exitBroken
	}
	env := sim.CurrentEnv()
	digest := plan.Digest(1, int(cfg.DemandBasis()))
	if opt.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(targetReport{Seed: cfg.Seed, PlanDigest: digest, Orders: cfg.Orders, Env: env, Report: rep})
	} else {
		err = httpload.WriteText(stdout, rep, targetHeader(cfg, env, digest))
	}
	if err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return exitBroken
	}
	switch {
	case rep.StatsError != "":
		fmt.Fprintln(stderr, "simulate:", rep.StatsError)
		return exitBroken
	case ctx.Err() != nil:
		return exitInterrupted
	}
	return exitOK
}

func targetHeader(cfg sim.Config, env sim.Env, digest string) string {
	commit := env.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	length := fmt.Sprintf("%d orders", cfg.Orders)
	if cfg.Duration > 0 {
		length = fmt.Sprintf("for %v", cfg.Duration)
	}
	return fmt.Sprintf("stockbus simulate -target: %s model over HTTP\n"+
		"  seed %d · %s %s/%s · GOMAXPROCS %d of %d CPUs · commit %s\n"+
		"  workload    %d skus (%s), %d batches/sku, demand/supply %v, %s, warm-up %s, bad input %v\n"+
		"  plan        %s",
		cfg.Model, cfg.Seed, env.GoVersion, env.GOOS, env.GOARCH, env.GOMAXPROCS, env.NumCPU, commit,
		cfg.SKUs, cfg.Popularity, cfg.BatchesPerSKU, cfg.Demand, length, cfg.WarmupText(), cfg.BadInput, digest)
}
