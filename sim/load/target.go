package load

import (
	"context"
	"fmt"
	"time"

	"github.com/stockbus/stockbus/sim/hist"
	"github.com/stockbus/stockbus/sim/workload"
)

// Outcome is what a Target made of one order, as its caller learned it.
type Outcome uint8

// The outcomes of an order sent to a Target.
const (
	// Unknown: no answer (a transport error, a timeout): the order may or may not have happened.
	Unknown Outcome = iota
	// Allocated: the order holds a batch.
	Allocated
	// OutOfStock: refused for want of stock (the out-of-stock event was committed).
	OutOfStock
	// Invalid: refused as invalid (an unknown sku, a bad quantity or id); nothing changed.
	Invalid
	// Failed: an answer that is an error of the target's, not of the order (a 5xx, a 409).
	Failed
	numOutcomes
)

var outcomeNames = [...]string{"unknown", "allocated", "out-of-stock", "invalid", "failed"}

// String names the outcome ("out-of-stock").
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Target serves one order and says what became of it: the shape of any system under load that
// takes orders (an HTTP API, the in-process stack). It must be safe for concurrent use: the
// workers of a model call it at once. It returns when the order's outcome is known, or when ctx
// ends (then Unknown, unless the answer came first).
type Target func(ctx context.Context, o workload.Order) Outcome

// Outcomes counts orders by outcome.
type Outcomes [numOutcomes]int64

// Total is the number of orders counted.
func (c Outcomes) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Get returns the count of outcome o (0 for an outcome that does not exist).
func (c Outcomes) Get(o Outcome) int64 {
	if o >= numOutcomes {
		return 0
	}
	return c[o]
}

// Recorder adapts a Target into a Server: each worker calls the target and records the outcome
// and the order's latency from its intended start (Arrival.Due) into histograms of its own, with
// no lock between workers; Tally merges them once the model returned. A closed run measures the
// orders inside its Window, an open run the arrivals the model marked Measured.
type Recorder struct {
	ctx     context.Context
	run     *Run
	closed  bool
	target  Target
	workers []recorded
}

// recorded is one worker's share of a run; only that worker touches it until Tally.
type recorded struct {
	outcomes, measured Outcomes
	latency, service   *hist.Histogram
	lastEnd            time.Duration
}

// NewRecorder returns a Recorder of workers workers calling t with ctx, on run's clock; closed
// says the model is Closed (measured by run's Window) rather than Open (by Arrival.Measured).
func NewRecorder(ctx context.Context, run *Run, workers int, closed bool, t Target) *Recorder {
	r := &Recorder{ctx: ctx, run: run, closed: closed, target: t, workers: make([]recorded, workers)}
	for i := range r.workers {
		r.workers[i].latency, r.workers[i].service = hist.New(), hist.New()
	}
	return r
}

// Serve is the Recorder as a Server: worker w sends the arrival to the target and records it.
func (r *Recorder) Serve(w int, a Arrival, start time.Duration) {
	out := r.target(r.ctx, a.Order)
	end := r.run.Now()
	rec := &r.workers[w]
	rec.outcomes[min(out, numOutcomes-1)]++ // an outcome beyond the list is the target's failure
	rec.lastEnd = max(rec.lastEnd, end)
	measured := a.Measured
	if r.closed {
		ws, we := r.run.Window.Start.Load(), r.run.Window.End.Load()
		measured = ws >= 0 && (we < 0 || int64(end) <= we) && int64(a.Due) >= ws
	}
	if measured {
		rec.measured[min(out, numOutcomes-1)]++
		rec.latency.Record(end - a.Due)
		rec.service.Record(end - start)
	}
}

// Tally is what a Recorder's workers recorded, merged.
type Tally struct {
	Outcomes Outcomes        // every order answered (or not), by outcome
	Measured Outcomes        // of them, the measured ones
	Latency  *hist.Histogram // measured orders: from the intended start (Due) to the outcome
	Service  *hist.Histogram // measured orders: from the worker's start to the outcome
	LastEnd  time.Duration   // when the last outcome came, on the run's clock
}

// Tally merges the workers' records. Call it after the model returned (it reads every worker's
// records without a lock).
func (r *Recorder) Tally() Tally {
	t := Tally{Latency: hist.New(), Service: hist.New()}
	for i := range r.workers {
		rec := &r.workers[i]
		for o := range numOutcomes {
			t.Outcomes[o] += rec.outcomes[o]
			t.Measured[o] += rec.measured[o]
		}
		t.Latency.Merge(rec.latency)
		t.Service.Merge(rec.service)
		t.LastEnd = max(t.LastEnd, rec.lastEnd)
	}
	return t
}
