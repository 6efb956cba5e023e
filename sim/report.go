package sim

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/stockbus/stockbus/sim/hist"
)

// Report is what a run measured. Its JSON field names are stable; durations are integer
// nanoseconds (fields ending in _ns), rates are per second.
type Report struct {
	Config        Config `json:"config"`
	Env           Env    `json:"env"`
	PlanDigest    string `json:"plan_digest"`              // the workload: same digest, same orders
	HistoryDigest string `json:"history_digest,omitempty"` // the outcomes, with Config.Record
	Interrupted   bool   `json:"interrupted"`              // stopped early (Ctrl-C); the report covers what ran

	Elapsed time.Duration `json:"elapsed_ns"` // from the first order to the strategy's stop
	Window  time.Duration `json:"window_ns"`  // the measured window (see Config.WarmupOrders)
	Drain   time.Duration `json:"drain_ns"`   // from the last order's end to the strategy's stop (delivering the backlog)

	Counts       Counts        `json:"counts"`
	Throughput   Throughput    `json:"throughput"`
	Latency      Dist          `json:"latency"`       // request latency, from the (due) start to the return
	Dispatch     Dispatch      `json:"dispatch"`      // time each request spent handing its events over
	Commit       Dist          `json:"commit"`        // time inside the store's Commit, every commit of measured requests (retries too)
	DeliveryLag  Dist          `json:"delivery_lag"`  // from an event's commit to the end of its first successful send
	GeneratorLag Dist          `json:"generator_lag"` // open model: from due to let go by the scheduler (timer lateness: the simulator's, not the system's)
	StartDelay   Dist          `json:"start_delay"`   // open model: from let go to picked up by a worker (waiting in the backlog)
	Strategy     StrategyStats `json:"strategy"`
	Mailer       MailerReport  `json:"mailer"`
	Model        *Model        `json:"model,omitempty"` // closed sync runs only
	Little       Little        `json:"little"`
	Memory       Memory        `json:"memory"`
	Faults       FaultReport   `json:"faults"`           // how often each fault fired
	Accounting   Accounting    `json:"accounting"`       // what became of the events, from the history
	Promise      Promise       `json:"promise"`          // what the run was held to: the strategy's promise and -require
	Chains       *Chains       `json:"chains,omitempty"` // with Config.QuantityChanges: messages by type, chain depth
	Broker       *BrokerReport `json:"broker,omitempty"` // on a real broker or with broker drops: publish latency, what the broker holds
	Invariants   []Invariant   `json:"invariants"`
	Percentiles  []Percentile  `json:"latency_percentiles"` // the latency's percentile spectrum, for plotting
	Timeline     []Interval    `json:"timeline"`            // orders and latency per interval, warm-up included (at most TimelineSlots)
	OK           bool          `json:"ok"`                  // every invariant held
	Failed       int64         `json:"failed"`              // orders that came back failed (retries exhausted): Counts.Failed
	Command      string        `json:"command"`             // the command line that runs this configuration again

	// History is everything the run observed, for accounting; not part of the JSON.
	History *History `json:"-"`
}

// Counts are what happened, over the whole run (warm-up included) unless a field says otherwise.
type Counts struct {
	Sent             int64 `json:"sent"`               // orders that reached the service
	Measured         int64 `json:"measured"`           // of them, started and finished in the window: the latency sample
	Completed        int64 `json:"completed"`          // orders finished in the window: the throughput
	Allocated        int64 `json:"allocated"`          // came back with a batch
	OutOfStock       int64 `json:"out_of_stock"`       // came back out of stock
	Rejected         int64 `json:"rejected"`           // invalid, unknown sku, conflicting quantity
	Failed           int64 `json:"failed"`             // any other error, exhausted retries included
	Exhausted        int64 `json:"retries_exhausted"`  // gave up after the retry budget
	Unknown          int64 `json:"unknown"`            // the process died before the client learned the outcome
	Resends          int64 `json:"client_resends"`     // orders sent again, same id, after an unknown outcome
	Resolved         int64 `json:"client_resolved"`    // orders whose outcome a resend learned
	Bad              int64 `json:"bad_orders"`         // invalid orders sent (Config.BadInput)
	Dropped          int64 `json:"dropped"`            // open model: never sent, backlog full
	Late             int64 `json:"late"`               // open model, measured: started later than late_after after due
	PublishErrors    int64 `json:"publish_errors"`     // committed, but handing events over failed
	Conflicts        int64 `json:"version_conflicts"`  // commits refused for a concurrent update
	Retries          int64 `json:"retries"`            // units of work run again after a conflict
	Forced           int64 `json:"forced_conflicts"`   // of the conflicts, forced by the fault plan
	Crashes          int64 `json:"crashes"`            // crashes of the simulated process
	EventsRaised     int64 `json:"events_raised"`      // events stamped with an ID, committed or not
	EventsCommitted  int64 `json:"events_committed"`   // of them, committed
	EventsRolledBack int64 `json:"events_rolled_back"` // raised in a unit of work that did not commit
	EventsDiscarded  int64 `json:"events_discarded"`   // committed, dropped by a full async queue
	EventsAbandoned  int64 `json:"events_abandoned"`   // committed, never handed over (run stopped)
	EventsDelivered  int64 `json:"events_delivered"`   // committed events mailed (OutOfStock) or published (others)
	EventsLost       int64 `json:"events_lost"`        // committed, not discarded, never delivered once the run drained
	EventsPending    int64 `json:"events_pending"`     // committed, not discarded, not delivered when an interrupted run stopped
	Sends            int64 `json:"sends"`              // calls to the mailer
	Publications     int64 `json:"publications"`       // calls to the broker (Allocated events)
	SendErrors       int64 `json:"send_errors"`        // of them, failed
	Mails            int64 `json:"mails"`              // mails the mail server accepted
	DedupHits        int64 `json:"dedup_hits"`         // repeats the mailer recognised and did not deliver
}

func (c *Counts) add(o Counts) {
	c.Sent += o.Sent
	c.Measured += o.Measured
	c.Completed += o.Completed
	c.Allocated += o.Allocated
	c.OutOfStock += o.OutOfStock
	c.Rejected += o.Rejected
	c.Failed += o.Failed
	c.Exhausted += o.Exhausted
	c.Unknown += o.Unknown
	c.Late += o.Late
	c.PublishErrors += o.PublishErrors
	c.Retries += o.Retries
	c.Forced += o.Forced
	c.Resends += o.Resends
	c.Resolved += o.Resolved
	c.Bad += o.Bad
}

// FaultReport is how often each fault fired in a run.
type FaultReport struct {
	Crashes           CrashCounts `json:"crashes"`            // crashes of the process, by point
	ForcedConflicts   int64       `json:"forced_conflicts"`   // commits the plan made conflict
	SendErrors        int64       `json:"send_errors"`        // sends the mailer failed on purpose
	Timeouts          int64       `json:"timeouts"`           // sends given up after -mail-timeout
	TimeoutsDelivered int64       `json:"timeouts_delivered"` // of them, accepted by the mail server anyway
	HandlerRetries    int64       `json:"handler_retries"`    // sends that repeated a failed send of the same event (sync-retry, the outbox relay)
	ClientResends     int64       `json:"client_resends"`     // orders sent again after an unknown outcome
	BadOrders         int64       `json:"bad_orders"`         // invalid orders sent
	BadBatches        int         `json:"bad_batches"`        // invalid batches tried before the first order
}

// CrashCounts counts crashes by point.
type CrashCounts struct {
	Total        int `json:"total"`
	BeforeCommit int `json:"before_commit"`
	AfterCommit  int `json:"after_commit"`
	AfterHandler int `json:"after_handler"`
	AfterDeliver int `json:"after_deliver"`
	RelaySent    int `json:"relay_sent"`
}

// CountCrashes counts the crashes of a history by point.
func CountCrashes(crashes []CrashOp) CrashCounts {
	var c CrashCounts
	for _, op := range crashes {
		c.Total++
		switch op.Point {
		case BeforeCommit:
			c.BeforeCommit++
		case AfterCommit:
			c.AfterCommit++
		case AfterHandler:
			c.AfterHandler++
		case AfterDeliver:
			c.AfterDeliver++
		case RelaySent:
			c.RelaySent++
		}
	}
	return c
}

// At returns the count at p.
func (c CrashCounts) At(p Point) int {
	switch p {
	case BeforeCommit:
		return c.BeforeCommit
	case AfterCommit:
		return c.AfterCommit
	case AfterHandler:
		return c.AfterHandler
	case AfterDeliver:
		return c.AfterDeliver
	case RelaySent:
		return c.RelaySent
	}
	return 0
}

// Throughput is orders per second in the measured window.
type Throughput struct {
	Offered  float64 `json:"offered_per_s"`  // open model: arrivals per second (0 in the closed model)
	Achieved float64 `json:"achieved_per_s"` // orders finished per second
}

// Dispatch is the time requests spent in dispatch: the headline cost of synchronous dispatch.
type Dispatch struct {
	Dist
	Share float64 `json:"share"` // of all request time, 0..1
}

// MailerReport is the latency the mailer was asked for and the one it really achieved; on a
// small machine timers overshoot, so the second is what the model uses.
type MailerReport struct {
	Requested Latency       `json:"requested"`
	Achieved  time.Duration `json:"achieved_mean_ns"` // mean of the sends that waited
	MaxSend   time.Duration `json:"achieved_max_ns"`
	Delayed   int64         `json:"delayed_sends"`
	// Send is the time every mail send took, as the sender timed it (failed sends included): on a
	// real mailer, the SMTP conversation.
	Send Dist `json:"send"`
}

// Model checks a closed sync run against N / (t0 + r·L): N workers; t0 a request's cost without
// the mailer, measured apart by a calibration run (one worker, the same workload and store, no
// mailer latency, no faults); r the fraction of the judged run's requests that sent a mail; L the
// mailer's achieved latency in the judged run. A slowdown the calibration did not have (a slower
// commit, idle workers, contention among N workers) shows as a ratio below 1.
type Model struct {
	Workers     int           `json:"workers"`
	T0          time.Duration `json:"t0_ns"`
	Calibration Calibration   `json:"calibration"`
	R           float64       `json:"r"`
	L           time.Duration `json:"l_ns"`
	Predicted   float64       `json:"predicted_per_s"`
	Measured    float64       `json:"measured_per_s"`
	Ratio       float64       `json:"ratio"` // measured / predicted
	Within10    bool          `json:"within_10pct"`
	Busy        float64       `json:"busy"` // fraction of the window the workers spent inside requests
	Note        string        `json:"note"`
}

// NewModel computes the model check. It has no wall-clock inputs of its own, so it is tested on
// made-up figures. busy (0..1) is only used to explain a miss.
func NewModel(workers int, t0 time.Duration, r float64, l time.Duration, measured, busy float64) Model {
	m := Model{Workers: workers, T0: t0, R: r, L: l, Measured: measured, Busy: busy}
	if per := t0.Seconds() + r*l.Seconds(); per > 0 {
		m.Predicted = float64(workers) / per
	}
	if m.Predicted > 0 {
		m.Ratio = measured / m.Predicted
	}
	m.Within10 = math.Abs(m.Ratio-1) <= 0.10
	switch {
	case m.Predicted == 0:
		m.Note = "nothing measured"
	case m.Within10:
		m.Note = "within 10%"
	case busy > 0 && busy < 0.9:
		m.Note = fmt.Sprintf("workers were inside requests only %.0f%% of the window: time between orders (order generation, bookkeeping, scheduling %d workers on GOMAXPROCS=%d) is outside the model",
			100*busy, workers, runtime.GOMAXPROCS(0))
	case m.Ratio < 1:
		m.Note = "dispatch cost more than r·L: the bus, the recording and timer overshoot beyond the mailer's own latency"
	default:
		m.Note = "requests were faster than t0 + r·L predicts"
	}
	return m
}

// Little cross-checks the run with Little's law: the mean number of orders in the system equals
// throughput × mean time in the system. InFlight is sampled independently every 10 ms during the
// window. In the open model an order enters the system when the scheduler lets it go, so the
// generator's lag is taken off the mean latency.
type Little struct {
	Throughput  float64       `json:"throughput_per_s"`
	MeanLatency time.Duration `json:"mean_latency_ns"` // mean time in the system
	Product     float64       `json:"product"`         // throughput × mean latency
	InFlight    float64       `json:"in_flight"`       // sampled mean of orders in the system
	Workers     int           `json:"workers"`         // closed model: the population, an upper bound
	Ratio       float64       `json:"ratio"`           // product / in_flight
}

// NewLittle computes the Little's law cross-check.
func NewLittle(throughput float64, mean time.Duration, inFlight float64, workers int) Little {
	l := Little{Throughput: throughput, MeanLatency: mean, InFlight: inFlight, Workers: workers,
		Product: throughput * mean.Seconds()}
	if inFlight > 0 {
		l.Ratio = l.Product / inFlight
	}
	return l
}

// Rate is n per second over d, or 0 when d is not positive (see hist.Rate).
func Rate(n int64, d time.Duration) float64 { return hist.Rate(n, d) }

// Memory is what the run cost in memory. The store keeps every allocated line and the fake
// mailer every mail, so the heap grows with orders; the simulator's own records are HistoryBytes.
type Memory struct {
	HeapBefore    uint64  `json:"heap_before_bytes"`     // live heap after seeding, before the first order
	HeapAfter     uint64  `json:"heap_after_bytes"`      // live heap after the run, before checking
	PerOrder      float64 `json:"bytes_per_order"`       // (after - before) / orders sent
	AllocPerOrder float64 `json:"alloc_bytes_per_order"` // bytes allocated per order, garbage included
	PeakHeap      uint64  `json:"peak_heap_bytes"`       // largest heap seen during the run, sampled every 10 ms
	PeakRSS       uint64  `json:"peak_rss_bytes"`        // the process's peak resident set so far (Linux VmHWM)
	HistoryBytes  uint64  `json:"history_bytes"`         // of the heap, the simulator's own records
}

// Env is where the run ran.
type Env struct {
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	Commit     string `json:"commit,omitempty"` // vcs.revision of the build, else `git rev-parse HEAD`
	Dirty      bool   `json:"dirty,omitempty"`  // the build had uncommitted changes
}

var commitOnce = sync.OnceValues(func() (string, bool) {
	if info, ok := debug.ReadBuildInfo(); ok {
		var rev string
		var dirty bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			return rev, dirty
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	status, _ := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), len(strings.TrimSpace(string(status))) > 0
})

// CurrentEnv describes this process.
func CurrentEnv() Env {
	commit, dirty := commitOnce()
	return Env{GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), Commit: commit, Dirty: dirty}
}

func (r *run) report(lastOrder, end time.Duration, interrupted bool) Report {
	cfg := r.cfg
	rep := Report{Config: cfg, Env: CurrentEnv(), Interrupted: interrupted, Elapsed: end,
		PlanDigest: r.plan.Digest(1, int(cfg.demandBasis()))}
	lat, disp, genLag, delay, commit := NewHistogram(), NewHistogram(), NewHistogram(), NewHistogram(), NewHistogram()
	var mailed int64
	var lastEnd time.Duration
	for _, w := range r.workers {
		lat.Merge(w.lat)
		disp.Merge(w.disp)
		commit.Merge(w.commit)
		genLag.Merge(w.genLag)
		delay.Merge(w.delay)
		rep.Counts.add(w.counts)
		mailed += w.mailed
		lastEnd = max(lastEnd, w.lastEnd)
		w.timeline.Flush()
	}
	rep.Timeline = r.timeline.Intervals(end)
	rep.Percentiles = lat.Spectrum()
	rep.Drain = max(end-max(lastEnd, lastOrder), 0)
	c := &rep.Counts
	c.Conflicts = c.Retries + c.Exhausted
	c.Dropped = r.sched.dropped
	ws, we := time.Duration(r.win.start.Load()), time.Duration(r.win.end.Load())
	if cfg.Model == Open || we < 0 {
		we = lastEnd
	}
	if ws >= 0 && we > ws {
		rep.Window = we - ws
	}
	rep.Throughput.Achieved = Rate(c.Completed, rep.Window)
	if cfg.Model == Open {
		rep.Throughput.Offered = Rate(r.sched.measuredArrivals, r.sched.lastDue-ws)
	}
	rep.Latency = lat.Dist()
	rep.Dispatch.Dist = disp.Dist()
	rep.Commit = commit.Dist()
	if lat.Sum() > 0 {
		rep.Dispatch.Share = float64(disp.Sum()) / float64(lat.Sum())
	}
	rep.GeneratorLag = genLag.Dist()
	rep.StartDelay = delay.Dist()

	st := r.mailer.Stats()
	rep.Mailer = MailerReport{Requested: cfg.Mailer, Achieved: st.MeanLatency(), MaxSend: st.LatencyMax, Delayed: int64(st.Delayed)}
	c.DedupHits = int64(st.DedupHits)
	rep.Strategy = r.strategy.Stats()
	rep.Faults = FaultReport{ForcedConflicts: c.Forced, SendErrors: int64(st.Failed), Timeouts: int64(st.TimedOut),
		TimeoutsDelivered: int64(st.TimedOutDelivered), ClientResends: c.Resends, BadOrders: c.Bad, BadBatches: len(r.badBatches)}

	if cal := r.calibration; cal != nil && lat.Count() > 0 {
		n := lat.Count()
		busy := float64(lat.Sum()) / (float64(len(r.workers)) * float64(rep.Window))
		m := NewModel(len(r.workers), cal.T0, float64(mailed)/float64(n), st.MeanLatency(), rep.Throughput.Achieved, busy)
		m.Calibration = *cal
		rep.Model = &m
	}
	return rep
}

// countEvents fills the event counts from the accounting, and the delivery lag, the crashes and
// the handler retries from the history.
func (r *run) countEvents(rep *Report, h *History) {
	c, a := &rep.Counts, rep.Accounting
	c.Crashes = int64(len(h.Crashes))
	rep.Faults.Crashes = CountCrashes(h.Crashes)
	c.EventsCommitted = int64(a.Committed)
	c.EventsDelivered = int64(a.Delivered)
	c.EventsDiscarded = int64(a.Discarded)
	c.EventsLost = int64(a.Lost)
	c.EventsPending = int64(a.Pending)
	c.Mails = int64(len(h.Mails))
	index := newIDIndex() // event ID -> 1 + position in h.Events
	for i, e := range h.Events {
		index.add(e.ID, i+1)
		c.EventsRaised++
		switch e.State {
		case RolledBack:
			c.EventsRolledBack++
		case Abandoned:
			c.EventsAbandoned++
		}
	}
	lag, send := NewHistogram(), NewHistogram()
	rep.Faults.TimeoutsDelivered += int64(r.resolvedTimeouts)
	sent := make([]bool, len(h.Events))
	failed := map[string]bool{} // of the actor whose sends are being read
	for i, s := range h.Sends {
		if i == 0 || s.Actor != h.Sends[i-1].Actor {
			clear(failed) // h.Sends is each actor's log in turn
		}
		if failed[s.Event] {
			rep.Faults.HandlerRetries++
		}
		failed[s.Event] = s.Err
		if s.Publish {
			c.Publications++
			continue
		}
		c.Sends++
		send.Record(s.Took)
		if s.Err {
			c.SendErrors++
		}
		if !s.Accepted {
			continue
		}
		k := index.get(s.Event) - 1
		if k < 0 || sent[k] {
			continue
		}
		sent[k] = true
		if e := h.Events[k]; e.State != RolledBack && int64(e.CommittedAt) >= r.win.start.Load() {
			lag.Record(s.At - e.CommittedAt)
		}
	}
	rep.DeliveryLag = lag.Dist()
	rep.Mailer.Send = send.Dist()
}

func (r *run) allActors() []*actor {
	var as []*actor
	for _, w := range r.workers {
		as = append(as, &w.actor)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(as, r.actors...)
}

// history assembles what the run observed. It is called once every goroutine has returned.
func (r *run) history(drained bool) *History {
	h := &History{Promise: r.strategy.Promise().Or(r.cfg.Require), Drained: drained, FaultsEnd: r.faultsEnd,
		Crashes: r.life.crashes, BadBatches: r.badBatches, DedupHits: r.mailer.DedupHits()}
	for _, a := range r.allActors() { // workers first, then the actors of the strategy
		worker, name := a.stream, ""
		if a.w == nil {
			worker, name = -1, a.name
		}
		for i, e := range a.events {
			h.Events = append(h.Events, EventOp{ID: eventID(a.stream, i+1), Order: orderID(e.orderStream, e.orderSeq), Worker: worker,
				Actor: name, Qty: int(e.qty), State: e.state, Kind: e.kind, Unknown: e.unknown, CommittedAt: e.committedAt})
		}
		if a.chain != nil {
			h.Reallocations = append(h.Reallocations, a.chain.reallocs...)
		}
	}
	for _, w := range r.workers {
		h.Bad = append(h.Bad, w.bad...)
		h.Clients.Orders += w.totals.Orders
		h.Clients.Qty += w.totals.Qty
		h.Clients.UnknownOrders += w.totals.UnknownOrders
		h.Clients.UnknownQty += w.totals.UnknownQty
		h.Clients.Failed += w.counts.Failed
		if r.cfg.Record {
			h.Orders = append(h.Orders, w.orders...)
		}
	}
	if r.cfg.Record {
		h.Orders = append(h.Orders, r.sched.ops...)
		if h.Orders == nil {
			h.Orders = []OrderOp{}
		}
	}
	var unknown []bool // of h.Sends
	for _, a := range r.allActors() {
		for i, s := range a.sends {
			id, ok := a.foreign[i]
			if !ok {
				id = eventID(int(s.worker), int(s.seq))
			}
			h.Sends = append(h.Sends, SendOp{Event: id, Actor: a.name, At: s.at, Took: s.took, Err: s.err, Timeout: s.timeout,
				Accepted: s.accepted, Publish: s.publish})
			unknown = append(unknown, s.unknown)
		}
	}
	h.Mails = r.mailer.Mails()
	if slices.Contains(unknown, true) {
		r.resolvedTimeouts = resolveUnknown(h, unknown)
	}
	h.Published = r.broker.held
	for _, sku := range r.store.SKUs() {
		p, _ := r.store.Product(sku)
		h.Products = append(h.Products, ProductState{SKU: sku, Version: p.VersionNumber})
		for _, b := range p.Batches {
			h.Batches = append(h.Batches, BatchState{Ref: b.Reference, SKU: b.SKU, Purchased: b.PurchasedQuantity(), Lines: b.Lines()})
		}
	}
	h.StillHeld = r.strategy.Stats().Pending
	return h
}

func (r *run) historyBytes() uint64 {
	var n uintptr
	for _, w := range r.workers {
		n += uintptr(cap(w.events))*unsafe.Sizeof(eventRec{}) + uintptr(cap(w.orders))*unsafe.Sizeof(OrderOp{}) +
			uintptr(cap(w.sends))*unsafe.Sizeof(sendRec{})
	}
	for _, a := range r.allActors() {
		if a.w == nil { // a reallocation's events too (Config.QuantityChanges)
			n += uintptr(cap(a.sends))*unsafe.Sizeof(sendRec{}) + uintptr(cap(a.events))*unsafe.Sizeof(eventRec{})
		}
	}
	return uint64(n)
}

type memSample struct{ heap, total uint64 }

func readMemory() memSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapAlloc, total: ms.TotalAlloc}
}

func memoryReport(before, after memSample, peak uint64, orders int64, history uint64) Memory {
	m := Memory{HeapBefore: before.heap, HeapAfter: after.heap, PeakHeap: max(peak, after.heap), PeakRSS: peakRSS(), HistoryBytes: history}
	if orders > 0 {
		m.PerOrder = (float64(after.heap) - float64(before.heap)) / float64(orders)
		m.AllocPerOrder = float64(after.total-before.total) / float64(orders)
	}
	return m
}

func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func littleCheck(rep Report, cfg Config, inFlight float64) Little {
	workers := 0
	if cfg.Model == Closed {
		workers = cfg.Workers
	}
	return NewLittle(rep.Throughput.Achieved, rep.Latency.Mean-rep.GeneratorLag.Mean, inFlight, workers)
}

// monitor samples the run every 10 ms: the number of orders in the system (for Little's law),
// the heap (for the peak), and progress for the caller.
type monitor struct {
	r        *run
	quit     chan struct{}
	wg       sync.WaitGroup
	inWindow atomic.Bool
	peakHeap atomic.Uint64

	sum     float64 // owned by the monitor goroutine until stop returns
	samples int
}

func startMonitor(r *run) *monitor {
	m := &monitor{r: r, quit: make(chan struct{})}
	m.inWindow.Store(true)
	m.wg.Go(m.loop)
	return m
}

func (m *monitor) loop() {
	r := m.r
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var total int64
	if r.cfg.Duration == 0 {
		total = int64(r.cfg.Orders)
	}
	for n := 1; ; n++ {
		select {
		case <-m.quit:
			return
		case <-tick.C:
		}
		var started, done int64
		for _, w := range r.workers {
			started += w.progress.started.Load()
			done += w.progress.done.Load()
		}
		if ws, we := r.win.start.Load(), r.win.end.Load(); m.inWindow.Load() && ws >= 0 && int64(r.now()) >= ws && we < 0 {
			inSystem := started - done
			if r.cfg.Model == Open {
				inSystem = r.enqueued.Load() - done
			}
			m.sum += float64(inSystem)
			m.samples++
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if v := sample[0].Value.Uint64(); v > m.peakHeap.Load() {
				m.peakHeap.Store(v)
			}
		}
		if r.cfg.Progress != nil && n%10 == 0 {
			r.cfg.Progress(Progress{Done: done, Total: total, Elapsed: r.now(), Limit: r.cfg.Duration})
		}
	}
}

func (m *monitor) windowDone() { m.inWindow.Store(false) }

func (m *monitor) stop() {
	close(m.quit)
	m.wg.Wait()
}

func (m *monitor) meanInFlight() float64 {
	if m.samples == 0 {
		return 0
	}
	return m.sum / float64(m.samples)
}
