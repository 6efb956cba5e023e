// Package simcli is the body of the simulator's commands: the flags, the runs and the output of
// cmd/simulate (the fakes only, quick to build) and cmd/simulate-real (which links the real
// adapters). A command passes the adapters it links as Adapters; a flag naming one it lacks is a
// usage error that names the command that has it.
//
// Exit status: 0 when every invariant held, 1 when one broke, 2 for a bad flag or an impossible
// configuration, 130 when interrupted (after printing the report of what ran).
package simcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

// Main runs the command with os.Args and exits: the whole of a simulator command's main.
func Main(ad Adapters) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, ad, os.Args[1:], os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK          = 0
	exitBroken      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// options are the flags that are not a sim.Config field.
type options struct {
	format  string
	compare string
	sweep   string
	report  string // -report (and its deprecated alias -chart): the HTML page to write
	count   int
	store   string
	mailer  string
	given   map[string]bool // the flags given on the command line
	broker  string
	target  targetOptions    // -target and its flags
	inst    instancesOptions // -instances and its flags
}

// Run runs the command with args, writing the report to stdout and errors to stderr (and a
// progress bar when stderr is a terminal), on the adapters ad, and returns the exit status.
func Run(ctx context.Context, ad Adapters, args []string, stdout, stderr io.Writer, terminal bool) int {
	cfg, opt, fs, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	}
	if err == nil && opt.given["instances"] {
		return runInstances(ctx, ad, cfg, opt, fs, stdout, stderr)
	}
	if err == nil && len(opt.target.urls) > 0 {
		return runTarget(ctx, cfg, opt, fs, stdout, stderr)
	}
	if err == nil && opt.given["kill-after"] {
		err = &sim.ConfigError{Field: "kill-after", Reason: "only with -instances"}
	}
	if err == nil {
		err = targetFlagsAlone(opt)
	}
	if err == nil {
		err = ad.apply(&cfg, opt)
	}
	if err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return exitUsage
	}
	cfgs, sweep, err := plan(cfg, opt, fs)
	if err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return exitUsage
	}

	out, err := openReport(opt.report, stderr, set(fs)["chart"])
	if err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return exitUsage
	}
	defer out.abandon()

	var bar *progress
	if terminal {
		bar = &progress{w: stderr, runs: len(cfgs)}
	}
	var reports []sim.Report
	for i, c := range cfgs {
		if ctx.Err() != nil {
			break
		}
		if bar != nil {
			c.Progress = bar.update(i, c)
		}
		r, err := sim.Run(ctx, c)
		bar.finish()
		if err != nil {
			fmt.Fprintln(stderr, "simulate:", err)
			return exitUsage
		}
		reports = append(reports, r)
	}

	if err := write(stdout, opt, reports, sweep); err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return exitBroken
	}
	if err := out.write(reports, sweep); err != nil {
		fmt.Fprintln(stderr, "simulate: -report:", err)
		return exitBroken
	}
	for _, r := range reports {
		if !r.OK {
			fmt.Fprintf(stderr, "simulate: %s broke %s (seed %d); rerun: %s\n", r.Config.Strategy, brokenNames(r), r.Config.Seed, r.Command)
			return exitBroken
		}
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return exitOK
}

// brokenNames lists the invariants a run broke.
func brokenNames(r sim.Report) string {
	var names []string
	for _, inv := range r.Invariants {
		if !inv.OK {
			names = append(names, strconv.Quote(inv.Name))
		}
	}
	return strings.Join(names, ", ")
}

// workload returns the preset named by the last -workload flag in args, so that the other flags
// apply on top of it whatever their order; an unknown name is reported by the flag itself.
func workload(args []string) sim.Config {
	cfg := sim.Default()
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "workload" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		if preset, ok := sim.Workloads[value]; ok {
			cfg = preset()
		}
	}
	return cfg
}

func parseFlags(args []string) (sim.Config, options, *flag.FlagSet, error) {
	cfg := workload(args)
	var opt options
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors come back as one line; -h prints the usage
	fs.Usage = func() { usage(fs) }
	workloadFlags(fs, &cfg)
	loadFlags(fs, &cfg)
	dispatchFlags(fs, &cfg)
	faultFlags(fs, &cfg)
	adapterFlags(fs, &cfg, &opt)
	targetFlags(fs, &opt.target)
	instancesFlags(fs, &opt.inst)

	err := explain(fs, fs.Parse(args))
	opt.given = set(fs)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	return cfg, opt, fs, err
}

// workloadFlags registers the seeded plan's flags: the workload preset, products, batches, orders and the run's length.
func workloadFlags(fs *flag.FlagSet, cfg *sim.Config) {
	fs.Func("workload", "preset the other flags change: "+strings.Join(workloadNames(), " or ")+" (hot-sku: 1 sku, 1 batch of 500, 1000 orders of 1) (default "+cfg.Workload+")", func(s string) error {
		if _, ok := sim.Workloads[s]; !ok {
			return fmt.Errorf("unknown workload %q (want %s)", s, strings.Join(workloadNames(), " or "))
		}
		return nil // applied before the other flags, by workload
	})
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the workload, the mailer, backoff jitter and every fault; never 0")
	fs.IntVar(&cfg.SKUs, "skus", cfg.SKUs, "number of products (skus)")
	fs.IntVar(&cfg.BatchesPerSKU, "batches", cfg.BatchesPerSKU, "batches of each sku")
	fs.Float64Var(&cfg.WarehouseShare, "warehouse", cfg.WarehouseShare, "fraction of batches in the warehouse (no ETA); the rest are shipments")
	fs.DurationVar(&cfg.ETASpread, "eta-spread", cfg.ETASpread, "shipments arrive between 1h and this after the plan's start")
	rangeFlag(fs, &cfg.BatchQty, "batch-qty", "batch sizes lo..hi as drawn, before scaling to -demand")
	rangeFlag(fs, &cfg.OrderQty, "order-qty", "quantity of each order, lo..hi")
	fs.Float64Var(&cfg.Demand, "demand", cfg.Demand, "expected demand / supply per sku: stock is scaled so about 1-1/demand of orders find none; negative keeps -batch-qty as drawn")
	fs.StringVar(&cfg.Popularity, "popularity", cfg.Popularity, "sku popularity: uniform or zipf (hot skus, version conflicts)")
	fs.Float64Var(&cfg.ZipfS, "zipf-s", cfg.ZipfS, "zipf exponent (> 1): higher is more skewed")
	fs.IntVar(&cfg.Orders, "orders", cfg.Orders, "orders to send; with -duration it only sizes the stock")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "run for this long instead of -orders orders (0: by orders)")
	fs.Func("warmup", "the first orders of the plan (e.g. 200) or a first stretch of time (e.g. 100ms) left out of the measurements (default 200)", func(s string) error {
		n, d, err := sim.ParseWarmup(s)
		cfg.WarmupOrders, cfg.Warmup = n, d
		return err
	})
}

// loadFlags registers the load model's flags.
func loadFlags(fs *flag.FlagSet, cfg *sim.Config) {
	fs.StringVar(&cfg.Model, "model", cfg.Model, "load model: closed (workers send the next order when the last returns) or open (orders arrive at -rate)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, fmt.Sprintf("closed: clients; open: most orders served at once (at most -orders in a run sized by -orders, and at most %d)", sim.MaxWorkers))
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "open model: orders per second offered")
	fs.StringVar(&cfg.Arrivals, "arrivals", cfg.Arrivals, "open model: steady (every 1/rate) or poisson arrivals")
	fs.IntVar(&cfg.Backlog, "backlog", cfg.Backlog, "open model: orders waiting for a worker before new ones are dropped")
	fs.DurationVar(&cfg.LateAfter, "late", cfg.LateAfter, "open model: an order that starts this much after it was due counts as late")
}

// dispatchFlags registers the flags of the mailer's latency, the dispatch strategies and the service's retries.
func dispatchFlags(fs *flag.FlagSet, cfg *sim.Config) {
	fs.Func("mailer-latency", "mailer send time: 5ms (fixed), fixed:5ms, uniform:1ms..9ms or exp:5ms (exponential, mean) (default "+cfg.Mailer.Mean.String()+")",
		func(s string) error {
			l, err := sim.ParseLatency(s)
			if err == nil {
				cfg.Mailer = l
			}
			return err
		})
	fs.StringVar(&cfg.Strategy, "strategy", cfg.Strategy, "dispatch strategy of a single run: "+strings.Join(sim.StrategyNames(), ", "))
	fs.IntVar(&cfg.Handlers, "handlers", cfg.Handlers, "async: handler goroutines; outbox: sends in flight per relay (outbox.WithSends; 1 with -quantity-changes, whose reallocations need commit order)")
	fs.IntVar(&cfg.Relays, "relays", cfg.Relays, fmt.Sprintf("outbox: relays (outbox.Relay) sharing the outbox table, 1 to %d; each has -handlers sends in flight, so mails keep commit order only with one send in flight and 1 relay", sim.MaxRelays))
	fs.IntVar(&cfg.Queue, "queue", cfg.Queue, "async: queue capacity")
	fs.StringVar(&cfg.WhenFull, "when-full", cfg.WhenFull, "async: block or drop when the queue is full")
	fs.IntVar(&cfg.Retries, "retries", cfg.Retries, "retries after a version conflict; -1 never gives up")
	fs.BoolVar(&cfg.Record, "record", cfg.Record, "record every order in the history (adds a history digest; ~100 bytes an order)")
	fs.IntVar(&cfg.HandlerAttempts, "handler-attempts", cfg.HandlerAttempts, "sync-retry: attempts of a failing handler in all (the book: 3)")
	fs.DurationVar(&cfg.HandlerBackoff, "handler-backoff", cfg.HandlerBackoff, "sync-retry: ceiling of the first wait between attempts, doubled each time, jittered")
	fs.BoolVar(&cfg.Dedup, "dedup", cfg.Dedup, "outbox: the mailer de-duplicates by event id (-dedup=false to see the duplicates)")
}

// faultFlags registers the fault flags.
func faultFlags(fs *flag.FlagSet, cfg *sim.Config) {
	// Faults: all seeded by -seed; a liveness phase without faults ends every run.
	fs.Func("crash", "crash the whole process with probability p at each visit of a point: point=p,... with points "+pointNames()+" (default none)", func(s string) error {
		c, err := sim.ParseCrashRates(s)
		cfg.Crash = c
		return err
	})
	fs.Func("crash-at", "instead of -crash, crash at chosen visits of a point, counted from 1 over the live process: point=n/n/,... (after-commit counts commits with an event); the faults stay on until every visit came (default none)", func(s string) error {
		c, err := sim.ParseCrashVisits(s)
		cfg.CrashAt = c
		return err
	})
	fs.IntVar(&cfg.HoldFaults, "hold-faults", cfg.HoldFaults, "keep the faults on after the last order until the mailer was tried this many times (while events are pending)")
	fs.Float64Var(&cfg.ConflictRate, "conflict-rate", cfg.ConflictRate, "force a version conflict on this fraction of commits (through the store's before-commit hook)")
	fs.Float64Var(&cfg.MailErrors, "mail-errors", cfg.MailErrors, "probability that a mailer send fails")
	fs.DurationVar(&cfg.MailTimeout, "mail-timeout", cfg.MailTimeout, "give up a send that takes longer; its outcome is unknown (0: never)")
	fs.Float64Var(&cfg.TimeoutDelivered, "timeout-delivered", cfg.TimeoutDelivered, "probability that the mail server accepted a timed-out send anyway")
	fs.Float64Var(&cfg.ClientRetry, "client-retry", cfg.ClientRetry, "probability that a client sends an order again (same id) after an unknown outcome")
	fs.Float64Var(&cfg.BadInput, "bad-input", cfg.BadInput, "fraction of orders sent invalid (qty 0, -1, huge, empty ids, unknown sku); adds invalid batches too")
	fs.Float64Var(&cfg.QuantityChanges, "quantity-changes", cfg.QuantityChanges, "probability that a worker, before an order, changes the quantity of a random batch of its sku (0..current), so Deallocated -> Allocate chains run, under every strategy")
	fs.IntVar(&cfg.Rendezvous, "rendezvous", cfg.Rendezvous, "hold the first n commits until all n arrived (2: the book's load, load, commit, commit)")
	fs.Func("require", "hold the run to promises beyond the strategy's own: no-loss, no-duplicate (mail and publication), no-duplicate-mail, no-duplicate-publish, delivered, no-failures (no order's retries exhausted), model (throughput within 10% of the model; closed sync runs only) (default none)", func(s string) error {
		p, err := sim.ParsePromise(s)
		cfg.Require = p
		return err
	})
}

// adapterFlags registers the flags of the real adapters and of the output: what to run against, how many times, and where the results go.
func adapterFlags(fs *flag.FlagSet, cfg *sim.Config, opt *options) {
	fs.StringVar(&opt.broker, "broker", "fakes", "broker Allocated events are published to: fakes, nats (a NATS JetStream server embedded in the process, a new one for each run) or a nats:// URL (a new stream on that server for each run); nats needs cmd/simulate-real")
	fs.Func("broker-drops", "drop the broker connection before these publications, counted from 1 over the run: n/n/...; it comes back once that publication failed, and the faults stay on until every drop came (default none)", func(s string) error {
		ns, err := sim.ParseBrokerDrops(s)
		cfg.BrokerDrops = ns
		return err
	})
	fs.StringVar(&opt.store, "store", "fakes", "store: fakes, sqlite (a temporary file), sqlite:PATH, or a postgres:// URL or postgres:URL (a new database on that server for each run); the real stores need cmd/simulate-real")

	fs.StringVar(&opt.mailer, "mailer", "fakes", "mailer: fakes, smtp (an SMTP test server inside the process, which injects -mailer-latency, -mail-errors and -mail-timeout through its replies) or smtp://host:port (a server of yours: no faults injected); smtp needs cmd/simulate-real")
	fs.StringVar(&opt.format, "format", output.Formats()[0].Name, output.Help())
	fs.StringVar(&opt.compare, "compare", "sync,sync-retry,async,outbox", "run each strategy on the same workload, side by side (ignored when -strategy is given)")
	fs.StringVar(&opt.sweep, "sweep", "", "run at each value of one parameter, e.g. mailer-latency=0,1ms,5ms,20ms or workers=1,2,4,8 ("+strings.Join(sim.SweepParams(), ", ")+")")
	fs.StringVar(&opt.report, "report", "", "write a self-contained HTML report (charts work offline) of the run, comparison or sweep to this file")
	fs.StringVar(&opt.report, "chart", "", "deprecated: the same as -report")
	fs.IntVar(&opt.count, "count", 1, "run everything this many times (samples for benchstat)")
}

func workloadNames() []string {
	var names []string
	for n := range sim.Workloads {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func pointNames() string {
	var names []string
	for _, p := range sim.Points() {
		names = append(names, p.String())
	}
	return strings.Join(names, ", ")
}

func rangeFlag(fs *flag.FlagSet, r *sim.Range, name, help string) {
	fs.Func(name, fmt.Sprintf("%s (default %v)", help, *r), func(s string) error {
		v, err := sim.ParseRange(s)
		if err == nil {
			*r = v
		}
		return err
	})
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `Usage: go run ./cmd/simulate [flags]

Runs a seeded workload through the stockbus stack on the fakes and reports what synchronous
dispatch costs: throughput, latency percentiles, the share of each request spent in dispatch,
a model check and the invariants. With fault flags (-crash, -conflict-rate, -mail-errors,
-mail-timeout, -client-retry, -bad-input) it also accounts for every event: lost, duplicated,
unexpected, recovered. With no flags it compares sync, sync-retry, async and outbox. With
-target URL it drives an HTTP API (go run ./cmd/api, or any that speaks its JSON) instead.

Exit status: 0 ok, 1 an invariant broke (a strategy broke its promise; the command that reruns
it is printed), 2 bad flags or configuration, 130 interrupted.

Flags:
`)
	fs.PrintDefaults()
}

// plan turns the flags into the runs to do.
func plan(cfg sim.Config, opt options, fs *flag.FlagSet) ([]sim.Config, *sim.Sweep, error) {
	set := set(fs)
	if _, ok := output.Lookup(opt.format); !ok {
		return nil, nil, &sim.ConfigError{Field: "format", Reason: fmt.Sprintf("want %s, got %q", output.Names(), opt.format)}
	}
	if opt.count < 1 {
		return nil, nil, &sim.ConfigError{Field: "count", Reason: fmt.Sprintf("must be at least 1, got %d", opt.count)}
	}
	var strategies []string
	if set["compare"] && strings.TrimSpace(opt.compare) == "" {
		return nil, nil, &sim.ConfigError{Field: "compare", Reason: "want strategies separated by commas, e.g. sync,async; got none"}
	}
	if !set["strategy"] && opt.compare != "" {
		for s := range strings.SplitSeq(opt.compare, ",") {
			s = strings.TrimSpace(s)
			c := cfg
			c.Strategy = s
			if err := c.Validate(); err != nil {
				if set["compare"] {
					return nil, nil, &sim.ConfigError{Field: "compare", Reason: err.Error()}
				}
				return nil, nil, err // a flag the user gave, not the default -compare
			}
			strategies = append(strategies, s)
		}
	}
	if err := cfg.Validate(); err != nil && !(len(strategies) > 0 && errorField(err) == "strategy") {
		return nil, nil, err
	}
	var cfgs []sim.Config
	var sweep *sim.Sweep
	if opt.sweep != "" {
		sw, err := sim.ParseSweep(opt.sweep)
		if err != nil {
			return nil, nil, err
		}
		if cfgs, err = sw.Plan(cfg, strategies); err != nil {
			return nil, nil, err
		}
		sweep = &sw
	} else if len(strategies) > 0 {
		for _, s := range strategies {
			c := cfg
			c.Strategy = s
			cfgs = append(cfgs, c)
		}
	} else {
		cfgs = []sim.Config{cfg}
	}
	var repeated []sim.Config
	for range opt.count {
		repeated = append(repeated, cfgs...)
	}
	return repeated, sweep, nil
}

func errorField(err error) string {
	var ce *sim.ConfigError
	if errors.As(err, &ce) {
		return ce.Field
	}
	return ""
}

func write(w io.Writer, opt options, reports []sim.Report, sweep *sim.Sweep) error {
	f, ok := output.Lookup(opt.format)
	if !ok { // plan refused it already
		return fmt.Errorf("unknown format %q", opt.format)
	}
	return f.Write(w, reports, sweep)
}

// progress draws a bar on stderr for runs that last more than two seconds.
type progress struct {
	w    io.Writer
	runs int

	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

const progressAfter = 2 * time.Second

func (p *progress) update(i int, c sim.Config) func(sim.Progress) {
	desc := c.Strategy
	if p.runs > 1 {
		desc = fmt.Sprintf("%s (run %d of %d)", c.Strategy, i+1, p.runs)
	}
	var est eta
	return func(pr sim.Progress) {
		p.mu.Lock()
		defer p.mu.Unlock()
		est.add(pr.Elapsed, pr.Done)
		if pr.Elapsed < progressAfter {
			return
		}
		total, done := pr.Total, pr.Done
		if pr.Limit > 0 {
			total, done = pr.Limit.Milliseconds(), min(pr.Elapsed.Milliseconds(), pr.Limit.Milliseconds())
		}
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(desc),
				progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(false),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		if pr.Limit > 0 {
			p.bar.Describe(desc + " " + est.describeRate() + ", ETA " + (pr.Limit - min(pr.Elapsed, pr.Limit)).Round(time.Second).String())
		} else {
			p.bar.Describe(desc + " " + est.describe(pr.Total))
		}
		_ = p.bar.Set64(done)
	}
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
