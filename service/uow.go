package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
)

var (
	// ErrNotFound is wrapped by a Repository when the product it was asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConcurrentUpdate is wrapped by Tx.Commit when a product it would store was changed by
	// another commit since this transaction loaded it. Nothing was applied; the work can be retried.
	ErrConcurrentUpdate = errors.New("concurrent update")
	// ErrRetriesExhausted is wrapped when a unit of work gave up after its retry budget of
	// concurrent updates. The error wraps the last ErrConcurrentUpdate too.
	ErrRetriesExhausted = errors.New("retries exhausted")
	// ErrPublish is wrapped when the work was committed but handling its events failed. The data
	// stays committed (the book's behaviour): callers can tell this apart from a failed commit.
	ErrPublish = errors.New("committed, but publishing events failed")
)

// Repository loads and adds products inside one transaction. Products it returns are the
// transaction's own copies: changes to them are stored only if the transaction commits.
type Repository interface {
	// Add adds a new product and marks it seen.
	Add(ctx context.Context, p *domain.Product) error
	// Get returns the product with the sku and marks it seen, or an error wrapping ErrNotFound
	// (and marks nothing). Getting the same sku twice returns the same product.
	Get(ctx context.Context, sku string) (*domain.Product, error)
	// GetByBatchRef returns the product that holds the batch and marks it seen, or an error
	// wrapping ErrNotFound.
	GetByBatchRef(ctx context.Context, ref string) (*domain.Product, error)
}

// Tx is one transaction of a Store: a Repository that remembers the products it has seen.
type Tx interface {
	Repository
	// Seen returns the products added or loaded so far, in first-seen order.
	Seen() []*domain.Product
	// Commit stores the changes of every seen product, all or nothing. It fails with an error
	// wrapping ErrConcurrentUpdate when a seen product changed since it was loaded, and with an
	// error wrapping domain.ErrDuplicateBatch when a batch reference is already another product's.
	Commit(ctx context.Context) error
	// Rollback discards the transaction. It is a no-op after Commit or a previous Rollback.
	Rollback()
}

// Store is the system of record: it begins transactions. fakes.Store is an in-memory one;
// servicetest.TestStore checks any implementation.
type Store interface {
	Begin(ctx context.Context) (Tx, error)
}

// UnitOfWork runs work atomically. It is a transaction starter, not an open transaction: one
// value serves every call, from many goroutines.
type UnitOfWork interface {
	// Do runs fn in a new transaction and commits when fn returns nil, then publishes the events
	// of every product the transaction saw. When fn fails or panics nothing is stored and
	// nothing is published.
	Do(ctx context.Context, fn func(ctx context.Context, repo Repository) error) error
}

// Dispatcher hands committed events to whatever handles them.
type Dispatcher func(ctx context.Context, events []domain.Event) error

// DefaultRetries is how many times a unit of work retries after a concurrent update by default.
const DefaultRetries = 10

// Option configures a Transactor.
type Option func(*Transactor)

// WithRetries sets how many times a conflicting unit of work is retried from the start
// (default DefaultRetries; 0 never retries; Unlimited never gives up).
func WithRetries(n int) Option { return func(t *Transactor) { t.retries = n } }

// WithBackoff sets the pause before retry attempt n (1, 2, ...). The default is a jittered
// exponential backoff: attempt n waits between half and all of 20µs·2^(n-1), capped at 2.56ms.
func WithBackoff(f func(attempt int) time.Duration) Option {
	return func(t *Transactor) { t.backoff = f }
}

// WithDispatcher replaces what happens to events after commit. The default hands them to the
// bus synchronously (the book's design); an outbox store makes it a no-op.
func WithDispatcher(d Dispatcher) Option { return func(t *Transactor) { t.dispatch = d } }

// WithBusOptions configures the bus that Bootstrap builds.
func WithBusOptions(opts ...BusOption) Option {
	return func(t *Transactor) { t.busOptions = append(t.busOptions, opts...) }
}

// Transactor is the UnitOfWork over a Store and a Bus. It is safe for concurrent use.
type Transactor struct {
	store      Store
	bus        *Bus
	retries    int
	backoff    func(int) time.Duration
	dispatch   Dispatcher
	busOptions []BusOption   // for Bootstrap
	publisher  Publisher     // for Bootstrap
	ids        atomic.Uint64 // numbers events when there is no bus (a dispatcher of its own)
}

var _ UnitOfWork = (*Transactor)(nil)

// NewUnitOfWork returns a unit of work that runs transactions on store and publishes committed
// events on bus.
func NewUnitOfWork(store Store, bus *Bus, opts ...Option) *Transactor {
	t := &Transactor{store: store, bus: bus, retries: DefaultRetries, backoff: jitteredBackoff}
	for _, o := range opts {
		o(t)
	}
	if t.dispatch == nil {
		t.dispatch = func(ctx context.Context, events []domain.Event) error { return t.bus.handleEvents(ctx, events) }
	}
	return t
}

// Bus returns the bus the unit of work publishes on.
func (t *Transactor) Bus() *Bus { return t.bus }

// Do implements UnitOfWork. A commit that fails with ErrConcurrentUpdate is retried from the start
// (a fresh load; the failed attempt's events are discarded) after a backoff, up to the retry
// budget; then the error wraps ErrRetriesExhausted. Events are stamped with an ID and the ID of the
// message being handled on ctx before commit, and published after it in first-seen product order.
// A publishing error is returned wrapped in ErrPublish; the data stays committed.
func (t *Transactor) Do(ctx context.Context, fn func(ctx context.Context, repo Repository) error) error {
	for attempt := 0; ; attempt++ {
		events, err := t.attempt(ctx, fn)
		if err == nil {
			if len(events) == 0 {
				return nil
			}
			dispatch := t.dispatch
			if d, _ := ctx.Value(dispatcherKey{}).(Dispatcher); d != nil {
				dispatch = d
			}
			if err := dispatch(ctx, events); err != nil {
				return fmt.Errorf("%w: %w", ErrPublish, err)
			}
			return nil
		}
		if !errors.Is(err, ErrConcurrentUpdate) {
			return err
		}
		if t.retries != Unlimited && attempt >= t.retries {
			return fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, attempt+1, err)
		}
		backoff := t.backoff
		if f, _ := ctx.Value(backoffKey{}).(func(int) time.Duration); f != nil {
			backoff = f
		}
		if err := sleep(ctx, backoff(attempt+1)); err != nil {
			return err
		}
	}
}

func (t *Transactor) attempt(ctx context.Context, fn func(ctx context.Context, repo Repository) error) ([]domain.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tx, err := t.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // a no-op after Commit; discards the work on error and on panic
	if err := fn(ctx, tx); err != nil {
		return nil, err
	}
	seen := tx.Seen()
	t.stamp(ctx, seen)
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	// The first product's events are handed over rather than copied (the products let go of
	// them), so the usual unit of work, which sees one product, collects without allocating.
	var events []domain.Event
	for _, p := range seen {
		if events == nil {
			events = p.Events
		} else {
			events = append(events, p.Events...)
		}
		p.Events = nil
	}
	return events, nil
}

// stamp gives every unstamped event an ID and, when a message is being handled on ctx, its
// causation ID. Events get IDs before commit so that a store can keep them (an outbox). Events
// that a product recorded already identified (see stampOnRecord) are left as they are, so a unit
// of work whose products all stamped on record copies no event.
func (t *Transactor) stamp(ctx context.Context, seen []*domain.Product) {
	cause, known := "", false
	for _, p := range seen {
		for i, e := range p.Events {
			if e.Identity().ID != "" {
				continue
			}
			if !known {
				cause, known = handling(ctx).ID, true
			}
			p.Events[i] = e.WithIdentity(domain.Meta{ID: t.nextID(ctx), CausationID: cause})
		}
	}
}

// stampOnRecord makes p identify the events it records from now on as stamp would before commit:
// IDs from nextID's source, in the order they are recorded, and the causation ID of the message
// being handled on ctx. Each event is then boxed once, already carrying its Meta, instead of
// boxed bare and boxed again by WithIdentity. The caller calls p.StampEvents(nil, "") when done,
// so that a product kept past the work (a store's copy) holds no call's ID source.
func (t *Transactor) stampOnRecord(ctx context.Context, p *domain.Product) {
	p.StampEvents(t.eventIDs(ctx), handling(ctx).ID)
}

// eventIDs returns the source that nextID(ctx) draws from, as a domain.IDSource: the running
// call's, the one WithIDs put on ctx, or the counter of the bus (or of t when it has no bus). Each
// is a pointer or a func, so the conversion to an interface allocates nothing.
func (t *Transactor) eventIDs(ctx context.Context) domain.IDSource {
	if t.bus != nil {
		if outer := callOf(ctx); outer != nil {
			if d := t.bus.runningFrom(outer); d != nil {
				return (*runningIDs)(d)
			}
		}
	}
	if next := idSource(ctx); next != nil {
		return funcIDs(next)
	}
	if t.bus != nil {
		return (*busIDs)(t.bus)
	}
	return (*transactorIDs)(t)
}

type (
	runningIDs    dispatch      // the IDs of a running call of the bus
	funcIDs       func() string // the IDs of WithIDs
	busIDs        Bus           // the bus's counter, outside any call
	transactorIDs Transactor    // the counter of a unit of work without a bus
)

func (d *runningIDs) NextID() string    { return (*dispatch)(d).nextID() }
func (f funcIDs) NextID() string        { return f() }
func (b *busIDs) NextID() string        { return (*Bus)(b).nextID(background) }
func (t *transactorIDs) NextID() string { return (*Transactor)(t).nextID(background) }

// nextID returns the next event ID from the source the bus uses for messages sent without one,
// so that IDs of events and commands never collide.
func (t *Transactor) nextID(ctx context.Context) string {
	if t.bus != nil {
		return t.bus.nextID(ctx)
	}
	if next := idSource(ctx); next != nil {
		return next()
	}
	var id [24]byte // "ev-" and the longest uint64: the string below is the only allocation
	return string(strconv.AppendUint(append(id[:0], "ev-"...), t.ids.Add(1), 10))
}

// newMeta identifies a message sent while handling the message being handled on ctx.
func (t *Transactor) newMeta(ctx context.Context) domain.Meta {
	return domain.Meta{ID: t.nextID(ctx), CausationID: handling(ctx).ID}
}

type idsKey struct{}

// WithIDs returns a context whose units of work and buses take message IDs from next instead of
// the bus's own counter. The simulator gives each worker its own seeded sequence this way, so runs
// replay. next is called from the goroutine that runs the unit of work.
func WithIDs(ctx context.Context, next func() string) context.Context {
	return context.WithValue(ctx, idsKey{}, next)
}

type (
	backoffKey    struct{}
	dispatcherKey struct{}
)

// WithCallBackoff returns a context whose units of work pause f(n) before retry attempt n of a
// conflicting commit, instead of the Transactor's backoff (WithBackoff). With WithCallDispatcher
// and WithIDs it lets one Transactor, whose command handlers Register bound, serve callers that
// each keep their own seeded backoff, dispatcher and IDs: the simulator's workers. f is called
// from the goroutine that runs the unit of work.
func WithCallBackoff(ctx context.Context, f func(attempt int) time.Duration) context.Context {
	return context.WithValue(ctx, backoffKey{}, f)
}

// WithCallDispatcher returns a context whose units of work hand committed events to d instead of
// the Transactor's dispatcher (WithDispatcher). The bus passes its caller's context on to the
// handlers, so a unit of work that a handler runs for a call on ctx (a command sent while handling
// an event) dispatches through d too. d is called from the goroutine that runs the unit of work.
func WithCallDispatcher(ctx context.Context, d Dispatcher) context.Context {
	return context.WithValue(ctx, dispatcherKey{}, d)
}

func idSource(ctx context.Context) func() string {
	next, _ := ctx.Value(idsKey{}).(func() string)
	return next
}

func jitteredBackoff(attempt int) time.Duration {
	ceiling := 20 * time.Microsecond << min(attempt-1, 7) // 20µs .. 2.56ms
	return ceiling/2 + rand.N(ceiling/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
