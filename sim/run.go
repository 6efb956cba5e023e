package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
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

// Calibration is what the model check's calibration run measured, apart from the run it judges:
// one worker, the same workload and store, no mailer latency and no faults.
type Calibration struct {
	Orders int64         `json:"orders"` // measured orders of the calibration run
	T0     time.Duration `json:"t0_ns"`  // their mean latency: a request's cost without the mailer
}

// calibrationOrders is the most orders a calibration run sends.
const calibrationOrders = 1000

// calibrationConfig is cfg's calibration run: the same workload (so the same store contents), one
// worker, a mailer without latency, no faults, no delay, every order recorded.
func calibrationConfig(cfg Config) Config {
	c := cfg
	c.Workers, c.Mailer, c.Record = 1, FixedLatency(0), true
	c.Orders, c.Duration, c.Warmup = min(cfg.Orders, calibrationOrders), 0, 0
	c.WarmupOrders = min(cfg.WarmupOrders, c.Orders/10)
	c.Crash, c.CrashAt, c.Faults, c.HoldFaults, c.BrokerDrops = CrashRates{}, nil, nil, 0, nil
	c.ConflictRate, c.MailErrors, c.MailTimeout, c.ClientRetry, c.BadInput, c.QuantityChanges = 0, 0, 0, 0, 0, 0
	c.Rendezvous, c.Require, c.Progress, c.CommitDelay = 0, Promise{}, nil, 0
	// t0 is a request's cost without the mailer, so not even a real mailer's conversation.
	c.MailerName, c.OpenMailer, c.NoMailFaults = "", nil, ""
	return c
}

// calibrate runs cfg's calibration run and returns what it measured.
func calibrate(ctx context.Context, cfg Config) (Calibration, error) {
	rep, err := runOnce(ctx, calibrationConfig(cfg), nil)
	if err != nil {
		return Calibration{}, fmt.Errorf("calibration run: %w", err)
	}
	n, t0 := ModelT0(rep.History)
	return Calibration{Orders: n, T0: t0}, nil
}

// ModelT0 returns the number of measured orders of a recorded history and their mean latency:
// the model's t0 when the history is a calibration run's (no mailer latency, so the mean is a
// request's cost outside the mailer). Orders of the warm-up do not count.
func ModelT0(h *History) (orders int64, t0 time.Duration) {
	var sum time.Duration
	for _, o := range h.Orders {
		if o.Measured {
			orders++
			sum += o.Latency
		}
	}
	if orders == 0 {
		return 0, 0
	}
	return orders, sum / time.Duration(orders)
}

// runOnce is Run without the calibration: cal, when set, is the model check's calibration.
func runOnce(ctx context.Context, cfg Config, cal *Calibration) (rep Report, err error) {
	plan, err := NewPlan(cfg)
	if err != nil {
		return Report{}, err
	}
	r := &run{cfg: cfg, plan: plan, faults: cfg.Faults, calibration: cal, timeline: newTimeline()}
	if r.faults == nil && cfg.Crash.Any() {
		r.faults = newSeededCrashes(cfg.Seed, cfg.Crash)
	}
	if cfg.CrashAt.Any() {
		r.counted = newCountedCrashes(cfg.CrashAt)
	}
	// The seeding completes even when ctx ends meanwhile: an interruption stops the orders, and
	// the run then reports that nothing ran rather than failing.
	err = r.setup(context.WithoutCancel(ctx))
	if err == nil {
		rep, err = r.execute(ctx)
	}
	if r.closeStore != nil {
		if cerr := r.closeStore(); err == nil && cerr != nil {
			err = fmt.Errorf("close the store: %w", cerr)
		}
	}
	if r.closeMailer != nil {
		if cerr := r.closeMailer(); err == nil && cerr != nil {
			err = fmt.Errorf("close the mailer: %w", cerr)
		}
	}
	if r.broker.close != nil {
		if cerr := r.broker.close(); err == nil && cerr != nil {
			err = fmt.Errorf("close the broker: %w", cerr)
		}
	}
	return rep, err
}

// run is one simulation: the stack under test and everything the simulator keeps about it.
type run struct {
	cfg         Config
	batchRefs   map[string][]string // batch references by sku, for quantity changes
	plan        *Plan
	faults      Faults          // the crash plan, nil without crashes
	counted     *countedCrashes // the crash plan by count (Config.CrashAt), nil without one
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
	// win is the measured window, in nanoseconds since start; -1 until it opens (closes). A closed
	// run opens it when the first order after the warm-up starts and closes it when the first
	// worker finds no order left; an open run opens it at the first measured arrival.
	win      struct{ start, end atomic.Int64 }
	workers  []*worker
	enqueued atomic.Int64 // open model: orders handed to the pool

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

func (r *run) setup(ctx context.Context) error {
	cfg := r.cfg
	r.strategy = strategies[cfg.Strategy](cfg)
	if err := r.openMailer(ctx); err != nil {
		return fmt.Errorf("open the mailer %s: %w", cfg.mailerName(), err)
	}
	if err := r.openBroker(ctx); err != nil {
		return err
	}
	r.broker.faults = newBrokerFaults(cfg.BrokerDrops)
	r.life.on = r.faults != nil || r.counted != nil
	r.life.live, r.life.unmarked = map[string]struct{}{}, map[string]struct{}{}
	var mw []service.Middleware
	if r.life.on {
		mw = append(mw, r.afterHandler) // outermost: after the handler and its retries
	}
	mw = append(mw, r.strategy.Middleware()...)
	var busOpts []service.BusOption
	if cfg.QuantityChanges > 0 {
		mw = append(mw, r.chainMiddleware) // innermost: around the Deallocated handler alone
		busOpts = append(busOpts, service.WithTrace(r.trace))
		r.batchRefs = map[string][]string{}
		for _, b := range r.plan.Batches {
			r.batchRefs[b.SKU] = append(r.batchRefs[b.SKU], b.Ref)
		}
		r.streams = cfg.Workers
	}
	if len(mw) > 0 {
		busOpts = append(busOpts, service.WithMiddleware(mw...))
	}
	if cfg.OpenStore != nil {
		s, closeStore, err := cfg.OpenStore(ctx)
		if err != nil {
			return fmt.Errorf("open the store %s: %w", cfg.StoreName(), err)
		}
		r.store, r.closeStore = s, closeStore
	} else {
		r.store = fakes.NewStore()
	}
	// The stack is the one the entry points run: Bootstrap's unit of work and bus, with every
	// handler registered by service.Register. The simulator only wraps the store (timing,
	// crashes), the mailer and publisher (recorder) and the handlers (middleware), and traces the
	// bus; each worker's backoff, IDs and dispatcher ride on its context.
	var store service.Store = timedStore{r.store}
	if r.life.on {
		store = crashStore{r: r, store: store}
	}
	r.uow = service.Bootstrap(store, recorder{r}, service.WithRetries(cfg.Retries),
		service.WithBusOptions(busOpts...), service.WithPublisher(recorder{r}))
	r.bus = r.uow.Bus()
	seeder := service.NewUnitOfWork(r.store, r.bus)
	for _, b := range r.plan.Batches {
		if err := service.AddBatch(ctx, seeder, b.Ref, b.SKU, b.Qty, b.ETA); err != nil {
			return err
		}
	}
	if cfg.BadInput > 0 {
		r.badBatches = tryBadBatches(ctx, seeder, r.store, r.plan)
	}
	var hooks []fakes.Hook
	if cfg.Rendezvous > 0 {
		hooks = append(hooks, fakes.NewRendezvous(cfg.Rendezvous).Wait)
	}
	if cfg.ConflictRate > 0 {
		hooks = append(hooks, r.forceConflict)
	}
	if d := cfg.CommitDelay; d > 0 {
		hooks = append(hooks, func(context.Context, []string) { time.Sleep(d) })
	}
	if len(hooks) > 0 { // set after seeding: the seeding commits must not wait or conflict
		r.store.SetBeforeCommit(func(ctx context.Context, skus []string) {
			for _, h := range hooks {
				h(ctx, skus)
			}
		})
	}
	for i := range cfg.Workers {
		r.workers = append(r.workers, r.newWorker(i))
	}
	return nil
}

// tryBadBatches adds invalid batches through the service, each of which must be refused with
// nothing stored, and records what came back.
func tryBadBatches(ctx context.Context, uow service.UnitOfWork, store Store, plan *Plan) []BadBatch {
	first, other := plan.Batches[0], plan.Batches[len(plan.Batches)-1]
	tries := []struct {
		what          string
		ref, sku      string
		qty           int
		differentSKUs bool
	}{
		{what: "duplicate reference, same sku", ref: first.Ref, sku: first.SKU, qty: 10},
		{what: "duplicate reference, another sku", ref: other.Ref, sku: first.SKU, qty: 10},
		{what: "duplicate reference, new sku", ref: first.Ref, sku: "NEW-SKU", qty: 10},
		{what: "empty reference", ref: "", sku: first.SKU, qty: 10},
		{what: "empty sku", ref: "BAD-1", sku: "", qty: 10},
		{what: "negative quantity", ref: "BAD-2", sku: first.SKU, qty: -1},
		{what: "huge quantity", ref: "BAD-3", sku: first.SKU, qty: domain.MaxQty + 1},
	}
	var out []BadBatch
	for _, t := range tries {
		before := storeState(store)
		err := service.AddBatch(ctx, uow, t.ref, t.sku, t.qty, time.Time{})
		b := BadBatch{What: t.what, Changed: storeState(store) != before}
		if err != nil {
			b.Err = err.Error()
		}
		out = append(out, b)
	}
	return out
}

// storeState summarises what the store holds: its skus, revisions and batch references.
func storeState(store Store) string {
	var sb strings.Builder
	for _, sku := range store.SKUs() {
		p, _ := store.Product(sku)
		fmt.Fprintf(&sb, "%s@%d:", sku, store.Revision(sku))
		for _, b := range p.Batches {
			fmt.Fprintf(&sb, "%s/%d/%d,", b.Reference, b.PurchasedQuantity(), b.AllocatedQuantity())
		}
	}
	return sb.String()
}

func (r *run) execute(ctx context.Context) (Report, error) {
	before := readMemory()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := context.AfterFunc(ctx, func() { r.stopped.Store(true) })
	defer stopWatch()

	r.win.start.Store(-1)
	r.win.end.Store(-1)
	r.runCtx = runCtx
	first := r.newIncarnation(runCtx, 0)
	r.life.cur.Store(first)
	r.start = time.Now()
	if err := r.strategy.Start(first.ctx, r); err != nil {
		return Report{}, err
	}
	mon := startMonitor(r)
	if r.cfg.Model == Open {
		r.runOpen(runCtx)
	} else {
		r.runClosed()
	}
	lastOrder := r.now()
	mon.windowDone()
	r.holdFaults(runCtx)
	// The liveness phase: no more faults, and what the process still holds drains.
	r.endFaults()
	r.faultsEnd = r.now()
	r.strategy.Stop()
	end := r.now()
	mon.stop()
	after := readMemory()

	rep := r.report(lastOrder, end, ctx.Err() != nil)
	rep.Memory = memoryReport(before, after, mon.peakHeap.Load(), rep.Counts.Sent, r.historyBytes())
	rep.Little = littleCheck(rep, r.cfg, mon.meanInFlight())
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

// holdFaults keeps the faults on after the last order while a plan by count (Config.CrashAt)
// has visits to come or the mailer has been tried fewer than Config.HoldFaults times, as long as
// the process still holds events (nothing else would visit a point or send) and the run is not
// interrupted. It polls: the strategy's goroutines make the progress it waits for.
func (r *run) holdFaults(ctx context.Context) {
	waiting := func() bool {
		return r.counted != nil && !r.counted.spent() || r.mailTries.Load() < int64(r.cfg.HoldFaults) || !r.broker.faults.spent()
	}
	if !waiting() {
		return
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for waiting() && r.holding() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// holding reports whether the process still holds committed events not yet delivered: pending
// outbox rows, or (when the process can crash, which is when the run tracks them) events in memory.
func (r *run) holding() bool {
	if r.strategy.Durable() {
		if pending, _ := r.store.OutboxCounts(); pending > 0 {
			return true
		}
	}
	if !r.life.on {
		return false
	}
	r.life.liveMu.Lock()
	defer r.life.liveMu.Unlock()
	return len(r.life.live) > 0
}

// now is the time since the run started, on the monotonic clock only: cheaper than time.Now,
// which also reads the wall clock, and it is what every measurement wants.
func (r *run) now() time.Duration { return time.Since(r.start) }

// actor is one goroutine of the simulated process, with its own log: no lock on the hot path.
type actor struct {
	name      string
	w         *worker                     // nil unless the actor is a worker
	inc       atomic.Pointer[incarnation] // the life of the process it belongs to
	sends     []sendRec
	foreign   map[int]string // sends[i] caused by an event whose ID the simulator did not make
	sendCount int

	// The events its units of work raised: a worker's requests, and (Config.QuantityChanges) the
	// reallocations an async handler or an outbox relay runs. They are "e<stream>-<seq>": a
	// worker's stream is its number, the other actors' count on from Config.Workers.
	stream      int
	eventPrefix string
	idBuf       []byte
	events      []eventRec  // index = event seq - 1
	chain       *chainStats // nil without Config.QuantityChanges
	delivering  bool        // inside Deliver: a nested Deliver joins the running bus call
}

// The logs hold no pointers, so that the garbage collector never scans them however long they
// grow (a million orders log a million events and sends): IDs are kept as their numbers and
// spelled out once, when the run assembles its History.

// eventRec is an EventOp as its worker logs it: event "e<worker>-<index+1>", raised for order
// "o<orderStream>-<orderSeq>".
type eventRec struct {
	orderStream, orderSeq int32
	qty                   int32 // of the line a Deallocated took out (Config.QuantityChanges)
	state                 EventState
	kind                  EventKind
	unknown               bool
	committedAt           time.Duration
}

// sendRec is a SendOp as its actor logs it: the cause is event "e<worker>-<seq>" (seq 0: see
// actor.foreign).
type sendRec struct {
	worker, seq                     int32
	err, timeout, accepted, publish bool
	unknown                         bool // timed out, and the mailer cannot say whether the server took it
	at, took                        time.Duration
}

// parseEventID reads "e<worker>-<seq>" as the workers stamp it, on every send: by hand, as
// strconv would cost a third of the send's bookkeeping.
func parseEventID(id string) (worker, seq int32, ok bool) {
	if len(id) < 4 || len(id) > 22 || id[0] != 'e' {
		return 0, 0, false
	}
	var n [2]int64
	part, digits := 0, 0
	for i := 1; i < len(id); i++ {
		switch c := id[i]; {
		case c >= '0' && c <= '9':
			n[part] = n[part]*10 + int64(c-'0')
			digits++
		case c == '-' && part == 0 && digits > 0:
			part, digits = 1, 0
		default:
			return 0, 0, false
		}
	}
	if part != 1 || digits == 0 || n[0] > math.MaxInt32 || n[1] < 1 || n[1] > math.MaxInt32 {
		return 0, 0, false
	}
	return int32(n[0]), int32(n[1]), true
}

func eventID(worker, seq int) string { return "e" + strconv.Itoa(worker) + "-" + strconv.Itoa(seq) }

func orderID(stream, seq int32) string {
	return "o" + strconv.Itoa(int(stream)) + "-" + strconv.Itoa(int(seq))
}

type actorKey struct{}

func actorOf(ctx context.Context) *actor {
	a, _ := ctx.Value(actorKey{}).(*actor)
	return a
}

// Actor implements Host. The actor belongs to the live process. With reallocation chains
// (Config.QuantityChanges) it has an event ID stream of its own, recorded in the history, and a
// dispatcher for what its reallocations commit (offWorkerDispatch).
func (r *run) Actor(ctx context.Context, name string) context.Context {
	inc := r.life.cur.Load()
	a := &actor{name: name + inc.suffix(), stream: -1}
	a.inc.Store(inc)
	r.mu.Lock()
	r.actors = append(r.actors, a)
	if r.cfg.QuantityChanges > 0 {
		a.setStream(r.streams)
		a.chain = newChainStats()
		r.streams++
	}
	r.mu.Unlock()
	ctx = context.WithValue(ctx, actorKey{}, a)
	if a.chain != nil {
		ctx = service.WithCallDispatcher(service.WithIDs(ctx, a.nextEventID), r.offWorkerDispatch)
	}
	return ctx
}

func (a *actor) setStream(n int) { a.stream, a.eventPrefix = n, "e"+strconv.Itoa(n)+"-" }

// offWorkerDispatch hands over what a reallocation committed on an actor that is no worker (an
// async handler, an outbox relay). Under the outbox the events are in the outbox already and the
// relays are nudged; under async they join the bus call the actor is running (the reallocation
// runs inside the Deallocated's handling), as the book's bus would handle them, rather than queue
// behind the actor's own queue, which it drains.
func (r *run) offWorkerDispatch(ctx context.Context, events []domain.Event) error {
	if a := actorOf(ctx); a != nil {
		a.markCommitted(events, r.now())
	}
	if r.strategy.Durable() {
		return r.strategy.Dispatch(ctx, events)
	}
	for _, e := range events {
		if err := r.Deliver(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// Deliver implements Host. When it returns the attempt is over: delivered, or given up (a failed
// send is not tried again unless a handler retries it inside), so the event is no longer held in
// memory on its account.
//
// A Deliver inside another (a reallocation's events, committed while the bus handles a
// Deallocated) only joins the running call's queue: the event is still held until the trace sees
// it handled (Config.QuantityChanges, which is what makes such calls).
func (r *run) Deliver(ctx context.Context, e domain.Event) error {
	a := actorOf(ctx)
	if a != nil && a.delivering {
		return r.bus.Handle(ctx, e)
	}
	if a != nil {
		a.delivering = true
		defer func() { a.delivering = false }()
	}
	err := r.bus.Handle(ctx, e)
	r.release(e.Identity().ID)
	return err
}

// Discarded implements Host.
func (r *run) Discarded(ctx context.Context, e domain.Event) bool {
	return r.Step(ctx, func() {
		r.setState(ctx, e, Discarded)
		r.release(e.Identity().ID)
	})
}

// Abandoned implements Host.
func (r *run) Abandoned(ctx context.Context, e domain.Event) { r.setState(ctx, e, Abandoned) }

func (r *run) setState(ctx context.Context, e domain.Event, s EventState) {
	if a := actorOf(ctx); a != nil {
		if op := a.event(e.Identity().ID); op != nil {
			op.state = s
		}
	}
}

// Store implements Host.
func (r *run) Store() Store { return r.store }

// Crash implements Host.
func (r *run) Crash(ctx context.Context, p Point) bool { return r.crashAt(ctx, p, nil) }

// afterHandler is the crash point after each handler, on whichever goroutine runs the bus.
func (r *run) afterHandler(next service.HandlerFunc) service.HandlerFunc {
	return func(ctx context.Context, e domain.Event) error {
		err := next(ctx, e)
		if r.crashAt(ctx, AfterHandler, nil) {
			return errCrashed
		}
		return err
	}
}

// forceConflict is the store's before-commit hook that touches the products a commit would
// store on ConflictRate of commits, as another writer would have: the commit then conflicts.
func (r *run) forceConflict(ctx context.Context, skus []string) {
	a := actorOf(ctx)
	if a == nil || a.w == nil || r.faultsOff.Load() {
		return
	}
	if w := a.w; w.faultRNG.Float64() < r.cfg.ConflictRate {
		for _, sku := range skus {
			r.store.Touch(sku)
		}
		w.counts.Forced++
	}
}

// recorder is the mailer and the publisher the bus's handlers send through: the fakes, plus a
// record of every send in the log of the goroutine that made it. A send is a step of the sender's
// process: a goroutine whose process died cannot send (it panics, as it unwinds a request).
type recorder struct{ r *run }

func (m recorder) Send(ctx context.Context, mail service.Mail) error {
	a, start := m.begin(ctx, false)
	m.r.mailTries.Add(1)
	err := m.r.mailer.Send(ctx, mail)
	m.end(a, start, mail.Cause, false, err)
	return err
}

func (m recorder) Publish(ctx context.Context, channel string, e domain.Event) error {
	a, start := m.begin(ctx, true)
	err := m.r.publish(ctx, channel, e)
	m.end(a, start, e, true, err)
	return err
}

// begin starts a send on behalf of the actor in ctx (nil for none: the seeder), as a step of its
// process. A publication is timed only when the report has a broker section (its publish latency).
func (m recorder) begin(ctx context.Context, publish bool) (*actor, time.Duration) {
	a := actorOf(ctx)
	if a == nil {
		return nil, 0
	}
	if !m.r.enter(a) {
		panic(crashed{})
	}
	if publish && !m.r.broker.timed {
		return a, 0
	}
	return a, m.r.now()
}

// end records the send in the actor's log and ends the step.
func (m recorder) end(a *actor, start time.Duration, cause domain.Event, publish bool, err error) {
	if a == nil {
		return
	}
	r := m.r
	defer r.exit()
	at := r.now()
	var id string
	if cause != nil {
		id = cause.Identity().ID
	}
	op := sendRec{at: at, err: err != nil, accepted: err == nil, publish: publish}
	if !publish {
		a.sendCount++ // the model's r counts requests that mailed
	}
	if !publish || start > 0 { // a publication is timed only with a broker report
		op.took = at - start
	}
	if err != nil {
		var te *fakes.TimeoutError
		switch {
		case errors.As(err, &te):
			op.timeout, op.accepted = true, te.Delivered
		case errors.Is(err, service.ErrMailUnknown): // resolved from the server's record after the run
			op.timeout, op.unknown = true, true
		}
	}
	if op.accepted {
		r.release(id)
	}
	if err == nil && r.strategy.Durable() {
		r.sentUnmarked(id) // an outbox relay's send: the row waits for its mark
	}
	if worker, seq, ok := parseEventID(id); ok {
		op.worker, op.seq = worker, seq
	} else {
		if a.foreign == nil {
			a.foreign = map[int]string{}
		}
		a.foreign[len(a.sends)] = id
	}
	a.sends = append(a.sends, op)
}

// worker is one client of the closed model, or one server of the open model's pool. Everything
// in it is touched only by its own goroutine, except the progress counters.
type worker struct {
	actor
	id       int
	run      *run
	ctx      context.Context
	rng      *rand.Rand // backoff jitter
	faultRNG *rand.Rand // forced conflicts and client retries
	qtyRNG   *rand.Rand // batch quantity changes (Config.QuantityChanges)

	current Order // the order being served

	dispatch time.Duration // spent in Dispatch during the current request

	lat, disp     *Histogram
	commit        *Histogram      // time inside the store's commit, of measured requests
	commits       []time.Duration // the current request's commits, timed by timedStore
	genLag, delay *Histogram      // open model: due to emitted, emitted to picked up
	counts        Counts
	totals        Totals
	mailed        int64 // measured requests that sent at least one mail themselves
	lastEnd       time.Duration
	orders        []OrderOp
	bad           []OrderOp

	progress *progress
	timeline *timelineLocal
}

type progress struct {
	started, done atomic.Int64
	_             [48]byte // keep workers' counters on separate cache lines
}

func (r *run) newWorker(i int) *worker {
	w := &worker{
		id: i, run: r,
		rng:      rand.New(rand.NewPCG(uint64(r.cfg.Seed), uint64(i)+1)),
		faultRNG: rand.New(rand.NewPCG(uint64(r.cfg.Seed)^0xfa17, uint64(i)+1)),
		lat:      NewHistogram(), disp: NewHistogram(), genLag: NewHistogram(), delay: NewHistogram(), commit: NewHistogram(),
		progress: &progress{}, timeline: r.timeline.Recorder(),
	}
	w.actor = actor{name: "w" + strconv.Itoa(i), w: w}
	w.setStream(i)
	if r.cfg.QuantityChanges > 0 {
		w.qtyRNG = rand.New(rand.NewPCG(uint64(r.cfg.Seed)^0x9a7c, uint64(i)+1))
		w.chain = newChainStats()
	}
	// Requests run to completion even when the run is interrupted, so that an interrupted run
	// leaves no half-dispatched request behind. The run's one unit of work takes the worker's
	// IDs, backoff and dispatcher from its context.
	ctx := service.WithIDs(context.Background(), w.nextEventID)
	ctx = context.WithValue(ctx, actorKey{}, &w.actor)
	ctx = service.WithCallBackoff(ctx, w.backoff)
	w.ctx = service.WithCallDispatcher(ctx, w.dispatchEvents)
	return w
}

// nextEventID stamps events with "e<stream>-<seq>" and records each one as raised, for the order
// a worker is serving; while a Deallocated handler runs (chainMiddleware) the ID is the Allocate
// command's it sends.
func (a *actor) nextEventID() string {
	if a.chain != nil && a.chain.cause != "" {
		return a.commandID()
	}
	a.idBuf = strconv.AppendInt(append(a.idBuf[:0], a.eventPrefix...), int64(len(a.events)+1), 10)
	rec := eventRec{state: RolledBack}
	if a.w != nil {
		rec.orderStream, rec.orderSeq = int32(a.w.current.Stream), int32(a.w.current.Seq)
	}
	a.events = append(a.events, rec)
	return string(a.idBuf)
}

func (a *actor) event(id string) *eventRec {
	if a.eventPrefix == "" {
		return nil
	}
	rest, ok := strings.CutPrefix(id, a.eventPrefix)
	seq, err := strconv.Atoi(rest)
	if !ok || err != nil || seq < 1 || seq > len(a.events) {
		return nil
	}
	return &a.events[seq-1]
}

// backoff is the service's default (a jittered exponential from 20µs, capped at 2.56ms) drawn
// from the worker's seeded source, and the count of retries.
func (w *worker) backoff(attempt int) time.Duration {
	w.counts.Retries++
	ceiling := 20 * time.Microsecond << min(attempt-1, 7)
	return ceiling/2 + time.Duration(w.rng.Int64N(int64(ceiling/2)))
}

// committed records that a commit stored the pending events of the seen products, and holds
// them as in memory only unless the strategy stored them too. It returns their IDs.
func (r *run) committed(a *actor, seen []*domain.Product, at time.Duration, inMemory bool) []string {
	var ids []string
	for _, p := range seen {
		a.markCommitted(p.Events, at)
		for _, e := range p.Events {
			id := e.Identity().ID
			if inMemory {
				r.hold(id)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// markCommitted records the actor's events as committed at at, unless already (the crash store
// does it inside the commit's step when the process can crash), and the reallocations they end.
func (a *actor) markCommitted(events []domain.Event, at time.Duration) {
	for _, e := range events {
		if op := a.event(e.Identity().ID); op != nil && op.state == RolledBack {
			op.state, op.kind, op.committedAt = Committed, kindOf(e), at
			if a.chain != nil {
				a.attribute(op, e)
				a.reallocated(e)
			}
		}
	}
}

func (w *worker) dispatchEvents(ctx context.Context, events []domain.Event) error {
	at := w.run.now()
	w.markCommitted(events, at)
	err := w.run.strategy.Dispatch(ctx, events)
	w.dispatch += w.run.now() - at
	return err
}

// serve sends one order and records what came back. due is when the order should have started
// (the open model's schedule), emitted when the scheduler let it go (timers fire late), start when
// a worker picked it up. measured says whether an open-model arrival is outside the warm-up;
// closed runs go by the window.
func (w *worker) serve(o Order, due, emitted, start time.Duration, measured bool) {
	r := w.run
	w.progress.started.Add(1)
	w.current = o
	w.dispatch = 0
	w.commits = w.commits[:0]
	if p := r.cfg.QuantityChanges; p > 0 && o.Bad == NoDefect && w.qtyRNG.Float64() < p {
		w.changeQuantity(o.SKU)
	}
	sends := w.sendCount
	outcome, ref, publishErr := w.allocate(o)
	resent := 0
	for outcome == Unknown && resent < MaxResends && r.cfg.ClientRetry > 0 && w.faultRNG.Float64() < r.cfg.ClientRetry {
		resent++ // the same order, same id: allocation is idempotent
		outcome, ref, publishErr = w.allocate(o)
	}
	end := r.now()
	w.progress.done.Add(1)

	c := &w.counts
	c.Sent++
	c.Resends += int64(resent)
	if resent > 0 && outcome != Unknown {
		c.Resolved++
	}
	switch outcome {
	case Allocated:
		c.Allocated++
		w.totals.Orders++
		w.totals.Qty += int64(o.Qty)
	case OutOfStock:
		c.OutOfStock++
	case Rejected:
		c.Rejected++
	case Exhausted:
		c.Exhausted++
		c.Failed++
	case Unknown:
		c.Unknown++
		w.totals.UnknownOrders++
		w.totals.UnknownQty += int64(o.Qty)
	default:
		c.Failed++
	}
	if publishErr {
		c.PublishErrors++
	}
	dueAt, endAt := due, end
	if r.cfg.Model == Closed {
		ws, we := r.win.start.Load(), r.win.end.Load()
		open := ws >= 0 && (we < 0 || int64(endAt) <= we)
		measured = open && int64(dueAt) >= ws
		if open && int64(endAt) >= ws {
			c.Completed++
		}
	} else if measured {
		c.Completed++
	}
	latency := end - due // from the intended start: a slow system cannot hide its queueing
	w.timeline.Record(end, latency)
	if measured {
		c.Measured++
		w.lat.Record(latency)
		w.disp.Record(w.dispatch)
		for _, d := range w.commits {
			w.commit.Record(d)
		}
		if w.sendCount > sends {
			w.mailed++
		}
		if r.cfg.Model == Open {
			w.genLag.Record(emitted - due)
			w.delay.Record(start - emitted)
			if start-due > r.cfg.LateAfter {
				c.Late++
			}
		}
		w.lastEnd = max(w.lastEnd, endAt)
	}
	if r.cfg.Record || o.Bad != NoDefect {
		op := OrderOp{ID: o.ID, SKU: o.SKU, Qty: o.Qty, Worker: w.id, Outcome: outcome,
			Batch: ref, PublishErr: publishErr, Resent: resent, Bad: o.Bad, Start: dueAt, End: endAt,
			Latency: latency, Measured: measured}
		if r.cfg.Record {
			w.orders = append(w.orders, op)
		}
		if o.Bad != NoDefect {
			c.Bad++
			w.bad = append(w.bad, op)
		}
	}
}

// allocate sends the order once. When the process dies under the request (a crash anywhere, or
// the request's own), the client never learns the outcome: Unknown, and the events the attempt
// raised are marked so.
func (w *worker) allocate(o Order) (outcome Outcome, ref string, publishErr bool) {
	r := w.run
	var inc *incarnation
	if r.life.on {
		inc = r.life.cur.Load()
		w.inc.Store(inc)
	}
	from := len(w.events)
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(crashed); !ok {
				panic(p)
			}
			outcome, ref, publishErr = Unknown, "", false
		}
		if outcome == Unknown {
			for i := from; i < len(w.events); i++ {
				w.events[i].unknown = true
			}
		}
	}()
	orderID, sku, qty := o.Args()
	ref, err := service.Allocate(w.ctx, r.uow, orderID, sku, qty)
	if inc != nil && inc.isDead() {
		return Unknown, "", false // the process died before the client had its answer
	}
	return classify(err), ref, errors.Is(err, service.ErrPublish)
}

func classify(err error) Outcome {
	switch {
	case err == nil:
		return Allocated
	case errors.Is(err, domain.ErrOutOfStock):
		return OutOfStock
	case errors.Is(err, service.ErrPublish):
		return Allocated // committed; the publish error is reported beside it
	case errors.Is(err, service.ErrRetriesExhausted):
		return Exhausted
	case errors.Is(err, domain.ErrInvalidOrderLine), errors.Is(err, domain.ErrOrderConflict), errors.Is(err, service.ErrInvalidSKU):
		return Rejected
	}
	return Failed
}

// runClosed lets every worker take the plan's next order as soon as its last one returned, until
// the plan (or the time) runs out. Sharing one stream keeps the workers busy to the end even when
// some orders take a thousand times longer than others.
func (r *run) runClosed() {
	p := &pool{s: r.plan.Stream(0), left: r.cfg.Orders}
	if r.cfg.Duration > 0 {
		p.left = -1
	}
	if r.cfg.WarmupOrders == 0 {
		r.win.start.Store(int64(r.cfg.Warmup))
	}
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.closedLoop(p) })
	}
	wg.Wait()
}

// pool hands out the plan's orders in order, to whichever worker asks.
type pool struct {
	mu   sync.Mutex
	s    *Stream
	left int // -1: no limit
}

func (p *pool) next() (Order, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left == 0 {
		return Order{}, false
	}
	if p.left > 0 {
		p.left--
	}
	return p.s.Next(), true
}

func (w *worker) closedLoop(p *pool) {
	r := w.run
	defer func() { r.win.end.CompareAndSwap(-1, int64(r.now())) }() // the first worker out closes the window
	for !r.stopped.Load() {
		if r.cfg.Duration > 0 && r.now() >= r.cfg.Duration {
			return
		}
		o, ok := p.next()
		if !ok {
			return
		}
		start := r.now()
		if o.Seq == r.cfg.WarmupOrders+1 {
			r.win.start.Store(int64(max(start, r.cfg.Warmup)))
		}
		w.serve(o, start, start, start, false)
	}
}

type arrival struct {
	order        Order
	due, emitted time.Duration
	measured     bool
}

// runOpen sends orders on a schedule fixed in advance, whatever the system does: a worker of the
// pool serves each; when all are busy orders wait in the backlog, and when that is full they are
// dropped. Latency counts from the due time.
func (r *run) runOpen(ctx context.Context) {
	backlog := make(chan arrival, r.cfg.Backlog)
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() {
			for a := range backlog {
				w.serve(a.order, a.due, a.emitted, r.now(), a.measured)
			}
		})
	}
	defer wg.Wait()
	defer close(backlog)

	s := r.plan.Stream(0)
	gaps := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 0xa771))
	mean := float64(time.Second) / r.cfg.Rate
	var due time.Duration // of the next arrival, since the start
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; r.cfg.Duration > 0 || i < r.cfg.Orders; i++ {
		if r.stopped.Load() || r.cfg.Duration > 0 && due >= r.cfg.Duration {
			return
		}
		if d := due - r.now(); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		o := s.Next()
		measured := i >= r.cfg.WarmupOrders && due >= r.cfg.Warmup
		if measured {
			r.win.start.CompareAndSwap(-1, int64(due))
			r.sched.measuredArrivals++
			r.sched.lastDue = due
		}
		select {
		case backlog <- arrival{o, due, r.now(), measured}:
			r.enqueued.Add(1)
		default:
			r.sched.dropped++
			if r.cfg.Record {
				r.sched.ops = append(r.sched.ops, OrderOp{ID: o.ID, SKU: o.SKU, Qty: o.Qty, Worker: -1, Outcome: Dropped, Start: due, End: due})
			}
		}
		if r.cfg.Arrivals == Poisson {
			due += time.Duration(gaps.ExpFloat64() * mean)
		} else {
			due = time.Duration(float64(i+1) * mean) // exact multiples: no drift
		}
	}
}
