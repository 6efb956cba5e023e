package sim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/dispatch"
)

// setup builds the run's stack and seeds it: the strategy, mailer and broker, the bus's
// middleware, the store, the stack service.Bootstrap makes, the plan's batches, the store's
// commit hooks and the workers.
func (r *run) setup(ctx context.Context) error {
	cfg := r.cfg
	strategy, err := dispatch.New(cfg.Strategy, cfg.dispatchOptions())
	if err != nil {
		return err
	}
	r.strategy = strategy
	if err := r.openMailer(ctx); err != nil {
		return fmt.Errorf("open the mailer %s: %w", cfg.mailerName(), err)
	}
	if err := r.openBroker(ctx); err != nil {
		return err
	}
	r.broker.faults = newBrokerFaults(cfg.BrokerDrops)
	r.life.on = r.faults != nil || r.counted != nil
	r.life.live, r.life.unmarked = map[string]struct{}{}, map[string]struct{}{}
	busOpts := r.busOptions()
	if err := r.openStore(ctx); err != nil {
		return err
	}
	r.bootstrap(busOpts)
	if err := r.seed(ctx); err != nil {
		return err
	}
	r.installHooks()
	for i := range cfg.Workers {
		r.workers = append(r.workers, r.newWorker(i))
	}
	return nil
}

// busOptions are the bus's middleware and trace: the crash point after each handler, the
// strategy's middleware and, with reallocation chains, the chain's middleware and trace.
func (r *run) busOptions() []service.BusOption {
	cfg := r.cfg
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
	return busOpts
}

// openStore opens Config.OpenStore's store, or a fake one.
func (r *run) openStore(ctx context.Context) error {
	if r.cfg.OpenStore == nil {
		r.store = fakes.NewStore()
		return nil
	}
	s, closeStore, err := r.cfg.OpenStore(ctx)
	if err != nil {
		return fmt.Errorf("open the store %s: %w", r.cfg.StoreName(), err)
	}
	r.store, r.closeStore = s, closeStore
	return nil
}

// bootstrap builds the stack the entry points run: Bootstrap's unit of work and bus, with every
// handler registered by service.Register. The simulator only wraps the store (timing, crashes),
// the mailer and publisher (recorder) and the handlers (middleware), and traces the bus; each
// worker's backoff, IDs and dispatcher ride on its context.
func (r *run) bootstrap(busOpts []service.BusOption) {
	var store service.Store = timedStore{r.store}
	if r.life.on {
		store = crashStore{r: r, store: store}
	}
	r.uow = service.Bootstrap(store, recorder{r}, service.WithRetries(r.cfg.Retries),
		service.WithBusOptions(busOpts...), service.WithPublisher(recorder{r}))
	r.bus = r.uow.Bus()
}

// seed adds the plan's batches through the service, and tries the bad ones (Config.BadInput).
func (r *run) seed(ctx context.Context) error {
	seeder := service.NewUnitOfWork(r.store, r.bus)
	for _, b := range r.plan.Batches {
		if err := service.AddBatch(ctx, seeder, b.Ref, b.SKU, b.Qty, b.ETA); err != nil {
			return err
		}
	}
	if r.cfg.BadInput > 0 {
		r.badBatches = tryBadBatches(ctx, seeder, r.store, r.plan)
	}
	return nil
}

// installHooks sets the store's before-commit hooks: the rendezvous, forced conflicts and the
// commit delay. It runs after seeding: the seeding commits must not wait or conflict.
func (r *run) installHooks() {
	cfg := r.cfg
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
	if len(hooks) > 0 {
		r.store.SetBeforeCommit(func(ctx context.Context, skus []string) {
			for _, h := range hooks {
				h(ctx, skus)
			}
		})
	}
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
