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

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/hist"
	"github.com/stockbus/stockbus/sim/httpload"
	"github.com/stockbus/stockbus/sim/load"
)

// InstancesRunner starts run.Instances API processes of its own on one new Postgres database,
// one NATS server and one SMTP sink, drives run.Load into them, stops them and accounts for
// every event their requests committed. cmd/simulate-real links one (internal/simreal); an error
// wrapping ErrInstancesConfig is the caller's (exit 2, nothing started), any other a broken run.
type InstancesRunner func(ctx context.Context, run InstancesRun) (*InstancesReport, error)

// ErrInstancesConfig is wrapped by an InstancesRunner's error for a run it refuses before it
// starts anything.
var ErrInstancesConfig = errors.New("bad -instances run")

// InstancesRun is one -instances run, under one strategy.
type InstancesRun struct {
	Instances int    // API processes, 1 or more
	Server    string // the Postgres server's URL: the run creates a database of its own there, and drops it
	Strategy  string // "sync" or "outbox"
	Relays    int    // relays per instance under the outbox
	// KillAfter, when positive, kills one instance (chosen by Seed) with SIGKILL once KillAfter
	// orders have been sent, and restarts it.
	KillAfter int
	Seed      int64
	// Load is the workload and model; the runner sets Targets to its instances' URLs.
	Load httpload.Config
	// Orders is how many orders the plan sends (the kill must come before the last).
	Orders int
}

// InstancesReport is the accounting of an -instances run: what the client was told (Load, with
// its per-target answers and the servers' merged histograms) and what the shared event log, sink
// and stream hold.
type InstancesReport struct {
	Strategy  string   `json:"strategy"`
	Instances []string `json:"instances"` // the instances' names, in target order
	Relays    int      `json:"relays_per_instance,omitempty"`
	// BuildTime is what building cmd/api cost this run (go build; the first build of a
	// checkout compiles pgx and the adapters, later ones mostly link).
	BuildTime time.Duration `json:"build_ns"`
	// The kill, when there was one: the instance, after how many orders, and what was in
	// flight then (requests to the killed life, and mails the sink held).
	Killed string `json:"killed,omitempty"`
	// KilledAfter is how many orders were sent before the kill: -kill-after, or more when the
	// kill's moment (every request in flight held in its mail) took more.
	KilledAfter    int `json:"killed_after,omitempty"`
	InFlightAtKill int `json:"in_flight_at_kill,omitempty"`
	HeldAtKill     int `json:"held_at_kill,omitempty"`
	// KilledLife is the killed life's GET /stats, fetched just before the SIGKILL (its
	// histograms die with it): its answered requests, and the seeding's when it was the first
	// target. Load.Server has the other lives', since the load began.
	KilledLife *httpload.Server `json:"killed_life,omitempty"`

	Load *httpload.Report `json:"load"`
	// Events are the committed events by type, each with what reached its receiver.
	Events []EventTally `json:"events"`
	// Unknown are the orders without an answer (a transport error); UnknownCommitted those of
	// them whose event the log holds. KilledLifeCommitted counts the events of the orders of
	// unknown outcome sent to the killed life.
	Unknown             int `json:"unknown"`
	UnknownCommitted    int `json:"unknown_committed"`
	KilledLifeCommitted int `json:"killed_life_committed"`
	// LostAnswered are lost events whose order was answered without a warning: a contradiction
	// (the answer came after the delivery under sync; the outbox loses nothing after the drain).
	LostAnswered int      `json:"lost_answered"`
	Phantoms     []string `json:"phantoms,omitempty"` // delivered event IDs the log never committed
	LogRepeats   int      `json:"log_repeats"`        // event IDs logged twice: 0 when IDs are unique
	Pending      int      `json:"outbox_pending"`     // outbox rows neither done nor parked at the end
	Drain        string   `json:"drain,omitempty"`    // outbox: how the drain ended
}

// EventTally is one event type's accounting across every instance: Committed = Delivered + Lost
// for a type with a receiver; Duplicated are deliveries beyond an event's first (mails the sink
// dropped by Message-ID, stream copies).
type EventTally struct {
	Type       string `json:"type"`
	Receiver   string `json:"receiver"` // "mail", "stream" or "none" (handled inside the service)
	Committed  int    `json:"committed"`
	Delivered  int    `json:"delivered"`
	Lost       int    `json:"lost"`
	Duplicated int    `json:"duplicated"`
}

// Exact reports whether the accounting holds: no phantom delivery, no event logged twice, no
// lost event of an answered order, committed = delivered + lost for every type with a receiver,
// and under the outbox nothing lost or pending after the drain.
func (r *InstancesReport) Exact() error {
	var errs []error
	if len(r.Phantoms) > 0 {
		errs = append(errs, fmt.Errorf("%d deliveries of events never committed", len(r.Phantoms)))
	}
	if r.LogRepeats > 0 {
		errs = append(errs, fmt.Errorf("%d event IDs logged twice", r.LogRepeats))
	}
	if r.LostAnswered > 0 {
		errs = append(errs, fmt.Errorf("%d lost events of answered orders", r.LostAnswered))
	}
	for _, e := range r.Events {
		if e.Receiver != "none" && e.Committed != e.Delivered+e.Lost {
			errs = append(errs, fmt.Errorf("%s: %d committed, %d delivered + %d lost", e.Type, e.Committed, e.Delivered, e.Lost))
		}
		if r.Strategy == "outbox" && e.Lost > 0 {
			errs = append(errs, fmt.Errorf("%s: %d lost under the outbox after the drain", e.Type, e.Lost))
		}
	}
	if r.Pending > 0 {
		errs = append(errs, fmt.Errorf("%d outbox rows pending", r.Pending))
	}
	return errors.Join(errs...)
}

// instancesOptions are the flags of a run of -instances.
type instancesOptions struct {
	n         int
	killAfter int
}

// instancesFlags registers -instances and -kill-after.
func instancesFlags(fs *flag.FlagSet, opt *instancesOptions) {
	fs.IntVar(&opt.n, "instances", 0, "start this many cmd/api processes on a new database of the -store postgres:// server, one NATS server and one SMTP sink, drive the workload over HTTP into all of them (as -target), and account for every event across them (needs cmd/simulate-real)")
	fs.IntVar(&opt.killAfter, "kill-after", 0, "with -instances: SIGKILL one instance (chosen by -seed) once this many orders were sent, and restart it")
}

// instancesFlagsOK are the flags that mean something with -instances.
var instancesFlagsOK = []string{
	"instances", "kill-after", "store", "strategy", "compare", "relays", "target-timeout", "format",
	"workload", "seed", "skus", "batches", "warehouse", "eta-spread", "batch-qty", "order-qty", "demand",
	"popularity", "zipf-s", "orders", "warmup", "bad-input",
	"model", "workers", "rate", "arrivals", "backlog",
}

// instanceStrategies are the strategies cmd/api runs.
var instanceStrategies = []string{"sync", "outbox"}

// planInstances checks the flags of an -instances run and returns its runs, one per strategy,
// or a usage error naming the flag.
func planInstances(cfg sim.Config, opt options, fs *flag.FlagSet) ([]InstancesRun, error) {
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(instancesFlagsOK, f.Name) {
			bad = append(bad, f.Name)
		}
	})
	if len(bad) > 0 {
		return nil, &sim.ConfigError{Field: bad[0], Reason: "makes no sense with -instances: the API processes have their own mailer (one SMTP sink), broker (one NATS server) and dispatch (with -instances: -" +
			strings.Join(instancesFlagsOK[1:], ", -") + ")"}
	}
	if opt.inst.n < 1 {
		return nil, &sim.ConfigError{Field: "instances", Reason: fmt.Sprintf("want 1 or more API processes, got %d", opt.inst.n)}
	}
	kind, server, err := storeKind(opt.store)
	if err != nil {
		return nil, err
	}
	if kind != "postgres" {
		return nil, &sim.ConfigError{Field: "store", Reason: "-instances needs a postgres:// server URL (every instance shares one database there), got " + redact(opt.store)}
	}
	if opt.format != "text" && opt.format != "json" {
		return nil, &sim.ConfigError{Field: "format", Reason: fmt.Sprintf("with -instances, want text or json, got %q", opt.format)}
	}
	strategies := []string{cfg.Strategy}
	if !opt.given["strategy"] {
		strategies = instanceStrategies
		if opt.given["compare"] {
			strategies = nil
			for s := range strings.SplitSeq(opt.compare, ",") {
				strategies = append(strategies, strings.TrimSpace(s))
			}
		}
	}
	for _, s := range strategies {
		if !slices.Contains(instanceStrategies, s) {
			field := "strategy"
			if !opt.given["strategy"] {
				field = "compare"
			}
			return nil, &sim.ConfigError{Field: field, Reason: fmt.Sprintf("with -instances, want sync or outbox (what cmd/api runs), got %q", s)}
		}
	}
	if cfg.Relays < 1 || cfg.Relays > sim.MaxRelays {
		return nil, &sim.ConfigError{Field: "relays", Reason: fmt.Sprintf("with -instances: relays per instance, 1 to %d, got %d", sim.MaxRelays, cfg.Relays)}
	}
	if opt.inst.killAfter < 0 || (opt.inst.killAfter > 0 && opt.inst.killAfter >= cfg.Orders) {
		return nil, &sim.ConfigError{Field: "kill-after", Reason: fmt.Sprintf("want 1 to %d (fewer than -orders, so that orders follow the restart), got %d", cfg.Orders-1, opt.inst.killAfter)}
	}
	check := cfg
	check.Strategy, check.Relays = sim.Sync, 1 // the relays are per instance, checked above
	if err := check.Validate(); err != nil {
		return nil, err
	}
	plan, err := sim.NewPlan(check)
	if err != nil {
		return nil, err
	}
	lc := httpload.Config{Plan: plan, Timeout: opt.target.timeout}
	if cfg.Model == sim.Closed {
		lc.Closed = &load.Closed{Workers: cfg.Workers, Orders: cfg.Orders, WarmupOrders: cfg.WarmupOrders, Warmup: cfg.Warmup}
	} else {
		lc.Open = &load.Open{Workers: cfg.Workers, Backlog: cfg.Backlog, Orders: cfg.Orders, Rate: cfg.Rate,
			Poisson: cfg.Arrivals == sim.Poisson, Seed: cfg.Seed, WarmupOrders: cfg.WarmupOrders, Warmup: cfg.Warmup}
	}
	var runs []InstancesRun
	for _, s := range strategies {
		runs = append(runs, InstancesRun{Instances: opt.inst.n, Server: server, Strategy: s, Relays: cfg.Relays,
			KillAfter: opt.inst.killAfter, Seed: cfg.Seed, Load: lc, Orders: cfg.Orders})
	}
	return runs, nil
}

// instancesReport is the JSON of an -instances run.
type instancesReport struct {
	Seed       int64              `json:"seed"`
	PlanDigest string             `json:"plan_digest"`
	Orders     int                `json:"orders_planned"`
	Env        sim.Env            `json:"env"`
	Runs       []*InstancesReport `json:"runs"`
}

// runInstances runs the workload on -instances API processes of the adapters' runner, once per
// strategy, and prints each run's report. Exit status: 2 for a bad flag (nothing started), 1
// when a run broke or its accounting is not exact (after the reports), 130 when interrupted.
func runInstances(ctx context.Context, ad Adapters, cfg sim.Config, opt options, fs *flag.FlagSet, stdout, stderr io.Writer) int {
	usage := func(err error) int { fmt.Fprintln(stderr, "simulate:", err); return exitUsage }
	runs, err := planInstances(cfg, opt, fs)
	if err != nil {
		return usage(err)
	}
	if ad.Instances == nil {
		return usage(&sim.ConfigError{Field: "instances", Reason: fmt.Sprintf("%v (cmd/simulate links the fakes only, to stay quick to build); run %s -instances %d -store postgres://...",
			ErrNotLinked, RealCommand, opt.inst.n)})
	}
	env := sim.CurrentEnv()
	plan := runs[0].Load.Plan
	digest := plan.Digest(1, int(cfg.DemandBasis()))
	var reports []*InstancesReport
	code := exitOK
	for _, run := range runs {
		if ctx.Err() != nil {
			break
		}
		began := time.Now()
		rep, err := ad.Instances(ctx, run)
		if errors.Is(err, ErrInstancesConfig) {
			return usage(err)
		}
		if err != nil {
			fmt.Fprintf(stderr, "simulate: -instances %d under %s: %v\n", run.Instances, run.Strategy, err)
			code = exitBroken
			continue
		}
		reports = append(reports, rep)
		if opt.format == "text" {
			header := fmt.Sprintf("%s\n  run         %s, %d instance(s), in %v (building cmd/api took %v of it)", instancesHeader(cfg, run, env, digest),
				run.Strategy, run.Instances, time.Since(began).Round(time.Millisecond), rep.BuildTime.Round(time.Millisecond))
			if err := writeInstances(stdout, rep, header); err != nil {
				fmt.Fprintln(stderr, "simulate:", err)
				return exitBroken
			}
		}
		if err := rep.Exact(); err != nil {
			fmt.Fprintf(stderr, "simulate: -instances under %s: accounting not exact: %v\n", run.Strategy, err)
			code = exitBroken
		}
		if rep.Load.StatsError != "" {
			fmt.Fprintln(stderr, "simulate:", rep.Load.StatsError)
			code = exitBroken
		}
	}
	if opt.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(instancesReport{Seed: cfg.Seed, PlanDigest: digest, Orders: cfg.Orders, Env: env, Runs: reports}); err != nil {
			fmt.Fprintln(stderr, "simulate:", err)
			return exitBroken
		}
	}
	if code == exitOK && ctx.Err() != nil {
		return exitInterrupted
	}
	return code
}

func instancesHeader(cfg sim.Config, run InstancesRun, env sim.Env, digest string) string {
	commit := env.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	return fmt.Sprintf("stockbus simulate -instances %d: %s model over HTTP\n"+
		"  seed %d · %s %s/%s · GOMAXPROCS %d of %d CPUs · commit %s\n"+
		"  workload    %d skus (%s), %d batches/sku, demand/supply %v, %d orders, warm-up %s, bad input %v\n"+
		"  plan        %s",
		run.Instances, cfg.Model, cfg.Seed, env.GoVersion, env.GOOS, env.GOARCH, env.GOMAXPROCS, env.NumCPU, commit,
		cfg.SKUs, cfg.Popularity, cfg.BatchesPerSKU, cfg.Demand, cfg.Orders, cfg.WarmupText(), cfg.BadInput, digest)
}

// writeInstances writes an -instances run's report as text: the load's, then the accounting.
func writeInstances(w io.Writer, r *InstancesReport, header string) error {
	if err := httpload.WriteText(w, r.Load, header); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n  instances   %s", strings.Join(r.Instances, ", "))
	if r.Strategy == "outbox" {
		fmt.Fprintf(&b, " (%d relays each)", r.Relays)
	}
	fmt.Fprintln(&b)
	if r.Killed != "" {
		fmt.Fprintf(&b, "  kill        %s (SIGKILL) after %d orders, restarted; %d requests in flight to it, %d mails held at the sink\n",
			r.Killed, r.KilledAfter, r.InFlightAtKill, r.HeldAtKill)
		if s := r.KilledLife; s != nil {
			fmt.Fprintf(&b, "  killed life %s, fetched before the kill: requests %s\n", strings.Join(s.Instances, ", "), distLine(s.Requests))
		}
	}
	fmt.Fprintf(&b, "  unknown     %d orders without an answer, %d of them committed (by the event log), %d events of those sent to the killed life\n",
		r.Unknown, r.UnknownCommitted, r.KilledLifeCommitted)
	fmt.Fprintf(&b, "  events      %-12s %-8s %9s %9s %6s %10s\n", "type", "receiver", "committed", "delivered", "lost", "duplicated")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "              %-12s %-8s %9d %9d %6d %10d\n", e.Type, e.Receiver, e.Committed, e.Delivered, e.Lost, e.Duplicated)
	}
	fmt.Fprintf(&b, "  exact       phantoms %d, IDs logged twice %d, lost of answered orders %d, outbox pending %d", len(r.Phantoms), r.LogRepeats, r.LostAnswered, r.Pending)
	if r.Drain != "" {
		fmt.Fprintf(&b, " (%s)", r.Drain)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// distLine prints a merged distribution in one line, to 3 significant digits.
func distLine(d hist.Dist) string {
	if d.Count == 0 {
		return "none"
	}
	r := func(v time.Duration) time.Duration {
		unit := time.Duration(1)
		for x := v; x >= 1000; x /= 10 {
			unit *= 10
		}
		return v.Round(unit)
	}
	return fmt.Sprintf("p50 %v  p99 %v  max %v  (n=%d)", r(d.P50), r(d.P99), r(d.Max), d.Count)
}
