package sim

import (
	"time"
)

// served is what one order's service came to, as the worker counts, measures and records it.
type served struct {
	order        Order
	outcome      Outcome
	ref          string
	publishErr   bool
	resent       int
	due, end     time.Duration
	latency      time.Duration // from the intended start: a slow system cannot hide its queueing
	measured     bool
	sendsBefore  int // the worker's sendCount before the request
	emitted, got time.Duration
}

// serve sends one order and records what came back. due is when the order should have started
// (the open model's schedule), emitted when the scheduler let it go (timers fire late), start when
// a worker picked it up. measured says whether an open-model arrival is outside the warm-up;
// closed runs go by the window.
func (w *worker) serve(o Order, due, emitted, start time.Duration, measured bool) {
	s := w.send(o)
	s.due, s.emitted, s.got, s.measured = due, emitted, start, measured
	s.latency = s.end - due
	w.countOutcome(&s)
	w.judgeWindow(&s)
	w.timeline.Record(s.end, s.latency)
	if s.measured {
		w.measure(&s)
	}
	w.recordOrder(&s)
}

// send runs the request: a quantity change first (Config.QuantityChanges), then the order, sent
// again by the client (same id) after an unknown outcome with probability Config.ClientRetry.
func (w *worker) send(o Order) served {
	r := w.run
	w.progress.started.Add(1)
	w.current = o
	w.dispatch, w.committedAt = 0, 0
	w.commits = w.commits[:0]
	if p := r.cfg.QuantityChanges; p > 0 && o.Bad == NoDefect && w.qtyRNG.Float64() < p {
		w.changeQuantity(o.SKU)
	}
	s := served{order: o, sendsBefore: w.sendCount}
	s.outcome, s.ref, s.publishErr = w.allocate(o)
	for s.outcome == Unknown && s.resent < MaxResends && r.cfg.ClientRetry > 0 && w.faultRNG.Float64() < r.cfg.ClientRetry {
		s.resent++ // the same order, same id: allocation is idempotent
		s.outcome, s.ref, s.publishErr = w.allocate(o)
	}
	s.end = r.now()
	w.progress.done.Add(1)
	return s
}

// countOutcome adds the order's outcome to the worker's counts and totals.
func (w *worker) countOutcome(s *served) {
	c := &w.counts
	c.Sent++
	c.Resends += int64(s.resent)
	if s.resent > 0 && s.outcome != Unknown {
		c.Resolved++
	}
	switch s.outcome {
	case Allocated:
		c.Allocated++
		w.totals.Orders++
		w.totals.Qty += int64(s.order.Qty)
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
		w.totals.UnknownQty += int64(s.order.Qty)
	default:
		c.Failed++
	}
	if s.publishErr {
		c.PublishErrors++
	}
}

// judgeWindow decides whether the order is measured and counts it completed: a closed run by the
// measured window, an open run by the arrival's own flag.
func (w *worker) judgeWindow(s *served) {
	r, c := w.run, &w.counts
	if r.cfg.Model == Closed {
		ws, we := r.load.Window.Start.Load(), r.load.Window.End.Load()
		open := ws >= 0 && (we < 0 || int64(s.end) <= we)
		s.measured = open && int64(s.due) >= ws
		if open && int64(s.end) >= ws {
			c.Completed++
		}
	} else if s.measured {
		c.Completed++
	}
}

// measure records a measured order in the worker's histograms.
func (w *worker) measure(s *served) {
	r, c := w.run, &w.counts
	c.Measured++
	w.lat.Record(s.latency)
	w.disp.Record(w.dispatch)
	for _, d := range w.commits {
		w.commit.Record(d)
	}
	if w.sendCount > s.sendsBefore {
		w.mailed++
	}
	if r.cfg.Model == Open {
		w.genLag.Record(s.emitted - s.due)
		w.delay.Record(s.got - s.emitted)
		if s.got-s.due > r.cfg.LateAfter {
			c.Late++
		}
	}
	w.lastEnd = max(w.lastEnd, s.end)
}

// recordOrder logs the order in the history (Config.Record), and always when it was sent bad.
func (w *worker) recordOrder(s *served) {
	r, o := w.run, s.order
	if !r.cfg.Record && o.Bad == NoDefect {
		return
	}
	op := OrderOp{ID: o.ID, SKU: o.SKU, Qty: o.Qty, Worker: w.id, Outcome: s.outcome,
		Batch: s.ref, PublishErr: s.publishErr, Resent: s.resent, Bad: o.Bad, Start: s.due, End: s.end,
		Latency: s.latency, Measured: s.measured}
	if r.cfg.Record {
		w.orders = append(w.orders, op)
	}
	if o.Bad != NoDefect {
		w.counts.Bad++
		w.bad = append(w.bad, op)
	}
}
