package sim

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/faults"
	"github.com/stockbus/stockbus/sim/load"
)

// Run builds the real stack (domain, service layer, unit of work, bus) on the fakes, seeds it
// with cfg's plan, sends the orders and returns what happened. Invalid settings return an error
// wrapping ErrConfig and nothing runs.
//
// When ctx ends the run stops cleanly: no new order starts, orders in flight finish, the strategy
// stops without draining, and the report covers what ran (Report.Interrupted). Run returns only
// after every goroutine it started has returned.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	var cal *Calibration
	if cfg.hasModel() {
		c, err := calibrate(ctx, cfg)
		if err != nil {
			return Report{}, err
		}
		if ctx.Err() == nil { // an interrupted calibration measured nothing worth a model
			cal = &c
		}
	}
	return runOnce(ctx, cfg, cal)
}

// runOnce is Run without the calibration: cal, when set, is the model check's calibration. It
// follows the orders' journey: plan the run, build and seed the stack, send the orders, let what
// the process holds drain, judge the history, and close what the run opened.
func runOnce(ctx context.Context, cfg Config, cal *Calibration) (rep Report, err error) {
	r, err := newRun(cfg, cal)
	if err != nil {
		return Report{}, err
	}
	defer func() { err = r.close(err) }()
	// The seeding completes even when ctx ends meanwhile: an interruption stops the orders, and
	// the run then reports that nothing ran rather than failing.
	if err := r.setup(context.WithoutCancel(ctx)); err != nil {
		return Report{}, err
	}
	return r.execute(ctx)
}

// newRun plans cfg's run: the workload's plan and the crash plans.
func newRun(cfg Config, cal *Calibration) (*run, error) {
	plan, err := NewPlan(cfg)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, plan: plan, faults: cfg.Faults, calibration: cal, timeline: newTimeline()}
	if r.faults == nil && cfg.Crash.Any() {
		r.faults = faults.NewSeeded(cfg.Seed, cfg.Crash)
	}
	if cfg.CrashAt.Any() {
		r.counted = faults.NewCounter(cfg.CrashAt)
	}
	return r, nil
}

// close closes the store, the mailer and the broker the run opened, and returns err or, when err
// is nil, the first error closing them.
func (r *run) close(err error) error {
	for _, c := range []struct {
		what  string
		close func() error
	}{{"store", r.closeStore}, {"mailer", r.closeMailer}, {"broker", r.broker.close}} {
		if c.close != nil {
			if cerr := c.close(); err == nil && cerr != nil {
				err = fmt.Errorf("close the %s: %w", c.what, cerr)
			}
		}
	}
	return err
}

// run is one simulation: the stack under test and everything the simulator keeps about it.
type run struct {
	cfg         Config
	batchRefs   map[string][]string // batch references by sku, for quantity changes
	plan        *Plan
	faults      Faults          // the crash plan, nil without crashes
	counted     *faults.Counter // the crash plan by count (Config.CrashAt), nil without one
	calibration *Calibration    // the model check's, nil for a run without a model
	mailTries   atomic.Int64    // mailer sends tried, for Config.HoldFaults
	store       Store
	closeStore  func() error // nil for the fake store
	mailer      Mailer
	closeMailer func() error // nil for the fake mailer
	broker      brokerRun
	bus         *service.Bus
	uow         *service.Transactor // service.Bootstrap's: its handlers are the only ones on bus
	strategy    Strategy
	depths      sync.Map // message ID -> its chain depth (int32), for the trace (Config.QuantityChanges)
	streams     int      // guarded by mu: the next event ID stream of an actor that is no worker

	runCtx     context.Context // ends when the run is interrupted
	life       life            // the process's lives and crashes
	faultsOff  atomic.Bool     // the liveness phase began
	faultsEnd  time.Duration
	badBatches []BadBatch

	start   time.Time
	stopped atomic.Bool
	load    load.Run // the load model's clock, measured window and count of arrivals handed over
	workers []*worker

	mu     sync.Mutex // guards actors
	actors []*actor   // the strategy's goroutines

	sched schedLog // open model: the arrival scheduler's own log

	timeline *timeline // throughput and latency per interval

	// resolvedTimeouts counts the timed-out sends the server's record showed it took (a real
	// mailer cannot tell), set by history.
	resolvedTimeouts int
}

type schedLog struct {
	dropped, measuredArrivals int64
	lastDue                   time.Duration
	ops                       []OrderOp
}

// execute starts the process, sends the orders under the load model, drains what the process
// still holds, and builds the report from what was measured and recorded.
func (r *run) execute(ctx context.Context) (Report, error) {
	before := readMemory()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := context.AfterFunc(ctx, func() { r.stopped.Store(true) })
	defer stopWatch()

	if err := r.startProcess(runCtx); err != nil {
		return Report{}, err
	}
	mon := startMonitor(r)
	r.sendOrders(runCtx)
	lastOrder := r.now()
	mon.windowDone()
	end := r.drain(runCtx)
	mon.stop()
	after := readMemory()

	rep := r.report(lastOrder, end, ctx.Err() != nil)
	rep.Memory = memoryReport(before, after, mon.peakHeap.Load(), rep.Counts.Sent, r.historyBytes())
	rep.Little = littleCheck(rep, r.cfg, mon.meanInFlight())
	return r.judge(ctx, rep)
}

// startProcess starts the clock and the process's first life, and the strategy in it.
func (r *run) startProcess(runCtx context.Context) error {
	r.load.Now, r.load.Stopped = r.now, r.stopped.Load
	r.load.Window.Reset()
	r.runCtx = runCtx
	first := r.newIncarnation(runCtx, 0)
	r.life.cur.Store(first)
	r.start = time.Now()
	return r.strategy.Start(first.ctx, r)
}

// sendOrders sends the plan's orders under the load model.
func (r *run) sendOrders(runCtx context.Context) {
	if r.cfg.Model == Open {
		r.runOpen(runCtx)
	} else {
		r.runClosed()
	}
}

// judge reads the history and adds to the report what it shows: accounting, chains, events,
// the invariants and the broker's record.
func (r *run) judge(ctx context.Context, rep Report) (Report, error) {
	if err := r.readBroker(context.WithoutCancel(ctx)); err != nil {
		return Report{}, err
	}
	h := r.history(ctx.Err() == nil)
	rep.Promise = h.Promise
	rep.Chains = r.chains()
	rep.Accounting = Account(h)
	r.countEvents(&rep, h)
	rep.Invariants = append(Check(h), checkModel(rep.Model, r.cfg.Require.Model).Invariant)
	if rep.Broker = r.brokerReport(h); rep.Broker != nil {
		rep.Invariants = append(rep.Invariants, checkBroker(rep.Broker))
	}
	rep.Failed = rep.Counts.Failed
	rep.OK = true
	for _, inv := range rep.Invariants {
		rep.OK = rep.OK && inv.OK
	}
	if r.cfg.Record {
		rep.HistoryDigest = h.Digest()
	}
	rep.Command = r.cfg.Command()
	rep.History = h
	return rep, nil
}

// now is the time since the run started, on the monotonic clock only: cheaper than time.Now,
// which also reads the wall clock, and it is what every measurement wants.
func (r *run) now() time.Duration { return time.Since(r.start) }
