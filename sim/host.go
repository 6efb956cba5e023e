package sim

import (
	"context"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/dispatch"
)

var _ dispatch.Host = (*run)(nil)

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
func (r *run) Store() dispatch.Store { return r.store }

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
