package sim

import (
	"time"

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

// Rate is n per second over d, or 0 when d is not positive (see hist.Rate).
func Rate(n int64, d time.Duration) float64 { return hist.Rate(n, d) }

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
	ws, we := time.Duration(r.load.Window.Start.Load()), time.Duration(r.load.Window.End.Load())
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
