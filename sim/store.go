package sim

import (
	"context"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
)

// Store is what a run needs of its store: the unit of work's service.Store, plus the test hooks
// every store of the module offers (fakes.Store, sqlite.Store, postgres.Store): a before-commit
// hook for forced conflicts and rendezvous, Touch, a snapshot of each product, and the outbox
// table: outbox.Store, the port the library's relay (outbox.Relay) claims and marks rows through,
// and the counts the drain waits on.
type Store interface {
	service.Store
	outbox.Store
	// SetBeforeCommit sets a hook that runs at the start of every commit (nil removes it).
	SetBeforeCommit(h fakes.Hook)
	// Touch bumps the product's version as another writer would, and reports whether it exists.
	Touch(sku string) bool
	// Product returns the stored product, and false when there is none.
	Product(sku string) (*domain.Product, bool)
	// Revision returns the product's row version, 0 when there is no such product.
	Revision(sku string) uint64
	// SKUs returns the skus of the stored products, sorted.
	SKUs() []string
	// EnableOutbox makes every later commit store its events as outbox rows.
	EnableOutbox()
	// OutboxCounts returns how many outbox rows are pending and how many are done.
	OutboxCounts() (pending, done int)
}

var (
	_ Store = (*fakes.Store)(nil)
)

// StoreOpener opens a new, empty store for one run (the calibration run and every run of a
// comparison each get their own) and returns it with the function that closes it and removes
// what it made. Config.OpenStore holds one; nil is the fake store.
type StoreOpener func(ctx context.Context) (Store, func() error, error)

// timedStore is the store as the workers see it: every Commit of a worker's unit of work is
// timed, and the time spent inside the store's commit goes to the worker's commit histogram.
type timedStore struct{ Store }

// Begin begins a transaction, in a worker's own timedTx when the worker has none open: its units
// of work run one at a time on its goroutine (the Transactor rolls each attempt back, a no-op
// after its commit, before the next begins), so one wrapper serves them all and a worker's
// request allocates none.
func (s timedStore) Begin(ctx context.Context) (service.Tx, error) {
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	a := actorOf(ctx)
	if a == nil || a.w == nil {
		return tx, nil // nothing to time
	}
	if w := a.w; !w.tx.open {
		w.tx = timedTx{Tx: tx, w: w, open: true}
		return &w.tx, nil
	}
	return &timedTx{Tx: tx, w: a.w, open: true}, nil
}

// timedTx is a worker's transaction, timed. open is true from Begin to the first Rollback.
type timedTx struct {
	service.Tx
	w    *worker
	open bool
}

// Commit commits and records how long the store took, on the worker's log (no lock), and when a
// commit that succeeded ended: the dispatch of its events starts there (dispatchEvents), one
// reading of the clock fewer per order (a reading costs 60-100 ns on this machine).
func (t *timedTx) Commit(ctx context.Context) error {
	w := t.w
	start := w.run.now()
	err := t.Tx.Commit(ctx)
	end := w.run.now()
	w.commits = append(w.commits, end-start)
	if err == nil {
		w.committedAt = end
	}
	return err
}

// Rollback rolls back and lets the worker's wrapper serve its next transaction.
func (t *timedTx) Rollback() {
	t.Tx.Rollback()
	t.open = false
}

// crashStore is the store as the workers see it when the process can crash: every commit is
// a step of the worker's incarnation, between the crash points before and after it. It observes
// and injects; the store does the work.
type crashStore struct {
	r     *run
	store service.Store
}

var _ service.Store = crashStore{}

func (s crashStore) Begin(ctx context.Context) (service.Tx, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &crashTx{Tx: tx, r: s.r}, nil
}

type crashTx struct {
	service.Tx
	r *run
}

// Commit crashes the process before the commit when the plan says so, commits unless the
// worker's process has died, records the events the commit carried, and crashes after it when
// the plan says so. A crash, or a process that died under the request, unwinds the request with
// a crashed panic (the unit of work rolls back on the way out).
func (t *crashTx) Commit(ctx context.Context) error {
	r := t.r
	a := actorOf(ctx)
	if a == nil || a.eventPrefix == "" { // the seeder, or an actor that runs no unit of work
		return t.Tx.Commit(ctx)
	}
	if r.crashAt(ctx, BeforeCommit, nil) {
		panic(crashed{BeforeCommit})
	}
	if !r.enter(a) {
		panic(crashed{})
	}
	err := t.Tx.Commit(ctx)
	var carried []string
	if err == nil {
		carried = r.committed(a, t.Seen(), r.now(), !r.strategy.Durable())
	}
	r.exit()
	if err == nil && r.crashAt(ctx, AfterCommit, carried) {
		panic(crashed{AfterCommit})
	}
	return err
}
