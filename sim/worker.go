package sim

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

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

	dispatch    time.Duration // spent in Dispatch during the current request
	committedAt time.Duration // when the last commit that succeeded ended, until its dispatch starts
	// untimedSends is set while the worker dispatches in a run that cannot crash: a publication
	// that is not timed then takes the dispatch's end as its At (recorder.end), one clock reading
	// fewer per order. No figure reads a closer time of it: the accounting compares a
	// publication's At with the end of the faults alone, which comes after every order.
	untimedSends bool

	lat, disp     *Histogram
	commit        *Histogram      // time inside the store's commit, of measured requests
	commits       []time.Duration // the current request's commits, timed by timedStore
	tx            timedTx         // the wrapper of its open transaction (timedStore.Begin)
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

func (w *worker) dispatchEvents(ctx context.Context, events []domain.Event) error {
	at := w.committedAt // the end of the commit that stored them, read by timedTx
	if at == 0 {
		at = w.run.now()
	}
	w.committedAt = 0
	w.markCommitted(events, at)
	from, outer := len(w.sends), w.untimedSends
	w.untimedSends = !w.run.life.on
	err := w.run.strategy.Dispatch(ctx, events)
	w.untimedSends = outer
	end := w.run.now()
	w.dispatch += end - at
	for i := from; i < len(w.sends); i++ {
		if w.sends[i].at == sendAtDispatchEnd {
			w.sends[i].at = end
		}
	}
	return err
}

// allocate sends the order once. When the process dies under the request (a crash anywhere, or
// the request's own), the client never learns the outcome: Unknown (request marks the events the
// attempt raised so).
func (w *worker) allocate(o Order) (outcome Outcome, ref string, publishErr bool) {
	died, err := w.request(func() (err error) {
		orderID, sku, qty := o.Args()
		ref, err = service.Allocate(w.ctx, w.run.uow, orderID, sku, qty)
		return err
	})
	if died {
		return Unknown, "", false // the process died before the client had its answer
	}
	return classify(err), ref, errors.Is(err, service.ErrPublish)
}

// request runs send as one request of the live process on the worker's goroutine: the worker
// takes the process's current life, and a crash that unwinds the request (a crashed panic) ends
// send with errCrashed. When the request's life died before it returned (a crash anywhere, or the
// request's own), its client never learns the outcome: request marks the events the request raised
// so and reports died. Any other panic goes on up.
func (w *worker) request(send func() error) (died bool, err error) {
	var inc *incarnation
	if w.run.life.on {
		inc = w.run.life.cur.Load()
		w.inc.Store(inc)
	}
	from := len(w.events)
	defer func() {
		p := recover()
		if p != nil {
			if _, ok := p.(crashed); !ok {
				panic(p)
			}
			err = errCrashed
		}
		if died = p != nil || inc != nil && inc.isDead(); died {
			for i := from; i < len(w.events); i++ {
				w.events[i].markUnknown()
			}
		}
	}()
	return false, send()
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
