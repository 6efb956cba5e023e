package service_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

var ctx = context.Background()

// noBackoff keeps conflict tests fast; the backoff itself is not what they check.
var noBackoff = service.WithBackoff(func(int) time.Duration { return 0 })

// stack wires the chapter 8 stack on fakes with extra store options and records every event the
// bus handled, in order.
type stack struct {
	uow     *service.Transactor
	store   *fakes.Store
	mailer  *fakes.Mailer
	handled *eventLog
}

type eventLog struct{ journal }

func newStack(t *testing.T, opts ...service.Option) *stack {
	t.Helper()
	s := &stack{store: fakes.NewStore(), mailer: fakes.NewMailer(), handled: &eventLog{}}
	s.uow = service.Bootstrap(s.store, s.mailer, append([]service.Option{noBackoff}, opts...)...)
	service.Subscribe(s.uow.Bus(), func(_ context.Context, e domain.OutOfStock) error {
		s.handled.add(e.ID + " " + e.OrderID)
		return nil
	})
	return s
}

func (s *stack) addBatch(t *testing.T, ref, sku string, qty int) {
	t.Helper()
	require.NoError(t, service.AddBatch(ctx, s.uow, ref, sku, qty, time.Time{}), "AddBatch(%s, %s, %d)", ref, sku, qty)
}

func (s *stack) product(t *testing.T, sku string) *domain.Product {
	t.Helper()
	p, ok := s.store.Product(sku)
	require.True(t, ok, "product %s stored", sku)
	return p
}

func TestEventsArePublishedOnlyAfterCommit(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 1)
	var committedWhenHandled bool
	service.Subscribe(s.uow.Bus(), func(_ context.Context, e domain.OutOfStock) error {
		_, held := s.product(t, "LAMP").Batches[0].Holds("o1", "LAMP")
		committedWhenHandled = held
		return nil
	})
	err := s.uow.Do(ctx, func(ctx context.Context, repo service.Repository) error {
		p, err := repo.Get(ctx, "LAMP")
		require.NoError(t, err)
		_, _ = p.Allocate(domain.OrderLine{OrderID: "o1", SKU: "LAMP", Qty: 1})
		_, err = p.Allocate(domain.OrderLine{OrderID: "o2", SKU: "LAMP", Qty: 1}) // out of stock
		require.ErrorIs(t, err, domain.ErrOutOfStock)
		assert.Empty(t, s.handled.get(), "published before commit")
		return nil
	})
	require.NoError(t, err)
	assert.True(t, committedWhenHandled, "the handler ran before the allocation was stored")
	assert.Equal(t, []string{"ev-2 o2"}, s.handled.get(), "ev-1 is the Allocated event of o1")
}

func TestNothingIsPublishedOrStoredWhenWorkFails(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 1)
	rev := s.store.Revision("LAMP")
	errStop := errors.New("stop")
	err := s.uow.Do(ctx, func(ctx context.Context, repo service.Repository) error {
		p, _ := repo.Get(ctx, "LAMP")
		_, _ = p.Allocate(domain.OrderLine{OrderID: "o1", SKU: "LAMP", Qty: 1})
		_, _ = p.Allocate(domain.OrderLine{OrderID: "o2", SKU: "LAMP", Qty: 1})
		return errStop
	})
	require.ErrorIs(t, err, errStop)
	assert.Equal(t, rev, s.store.Revision("LAMP"), "rolled-back work was stored")
	assert.Empty(t, s.handled.get())
	assert.Zero(t, s.mailer.Len())
}

func TestAPanicInWorkRollsBackAndPanicsOn(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 1)
	rev := s.store.Revision("LAMP")
	assert.PanicsWithValue(t, "bug", func() {
		_ = s.uow.Do(ctx, func(ctx context.Context, repo service.Repository) error {
			p, _ := repo.Get(ctx, "LAMP")
			_, _ = p.Allocate(domain.OrderLine{OrderID: "o1", SKU: "LAMP", Qty: 1})
			_, _ = p.Allocate(domain.OrderLine{OrderID: "o2", SKU: "LAMP", Qty: 1})
			panic("bug")
		})
	})
	assert.Equal(t, rev, s.store.Revision("LAMP"))
	assert.Empty(t, s.handled.get())
}

func TestEventsArePublishedInFirstSeenOrderOnceAndRemoved(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "A", 1)
	s.addBatch(t, "b2", "B", 1)
	var seen []*domain.Product
	err := s.uow.Do(ctx, func(ctx context.Context, repo service.Repository) error {
		b, _ := repo.Get(ctx, "B")
		a, _ := repo.Get(ctx, "A")
		seen = []*domain.Product{b, a}
		for _, line := range []domain.OrderLine{
			{OrderID: "a1", SKU: "A", Qty: 5}, {OrderID: "b1", SKU: "B", Qty: 5},
			{OrderID: "a2", SKU: "A", Qty: 5}, {OrderID: "b2", SKU: "B", Qty: 5},
		} {
			p := map[string]*domain.Product{"A": a, "B": b}[line.SKU]
			_, err := p.Allocate(line)
			require.ErrorIs(t, err, domain.ErrOutOfStock)
		}
		return nil
	})
	require.NoError(t, err)
	// B was seen first, so its events come first, each product's in the order it recorded them.
	assert.Equal(t, []string{"ev-1 b1", "ev-2 b2", "ev-3 a1", "ev-4 a2"}, s.handled.get())
	for _, p := range seen {
		assert.Empty(t, p.Events, "events left on %s after publishing", p.SKU)
	}
	require.NoError(t, s.uow.Do(ctx, func(ctx context.Context, repo service.Repository) error {
		_, err := repo.Get(ctx, "A")
		return err
	}))
	assert.Len(t, s.handled.get(), 4, "events published again by a later unit of work")
}

func TestEventsGetIDsFromTheContextWhenGiven(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 0)
	n := 0
	wctx := service.WithIDs(ctx, func() string { n++; return "w7-" + strconv.Itoa(n) })
	for _, order := range []string{"o1", "o2"} {
		_, err := service.Allocate(wctx, s.uow, order, "LAMP", 1)
		require.ErrorIs(t, err, domain.ErrOutOfStock)
	}
	assert.Equal(t, []string{"w7-1 o1", "w7-2 o2"}, s.handled.get())
	mails := s.mailer.Mails()
	require.Len(t, mails, 2)
	assert.Equal(t, "w7-2", mails[1].Cause.Identity().ID)
}

func TestHandlerErrorAfterCommitReachesTheCallerAndTheDataStays(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 0)
	service.Subscribe(s.uow.Bus(), func(context.Context, domain.OutOfStock) error { return errBoom })
	rev := s.store.Revision("LAMP")
	err := s.uow.Do(ctx, func(ctx context.Context, repo service.Repository) error {
		p, _ := repo.Get(ctx, "LAMP")
		_, _ = p.Allocate(domain.OrderLine{OrderID: "o1", SKU: "LAMP", Qty: 1})
		return repo.Add(ctx, domain.NewProduct("NEW", nil))
	})
	require.ErrorIs(t, err, service.ErrPublish)
	require.ErrorIs(t, err, errBoom)
	assert.Equal(t, rev, s.store.Revision("LAMP"), "an out-of-stock product is not rewritten")
	_, stored := s.store.Product("NEW")
	assert.True(t, stored, "the committed product is kept although publishing failed")
	assert.Equal(t, 1, s.mailer.Len(), "the mail handler ran before the failing one")
}

func TestBooksTwoWritersOneConflict(t *testing.T) {
	for _, tc := range []struct {
		name        string
		retries     int
		allocations int
		version     int
		failures    int
	}{
		{"without retry one commit fails", 0, 1, 2, 1},
		{"with retry both allocate", 1, 2, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meet := fakes.NewRendezvous(2) // forces load, load, commit, commit
			s := newStack(t, service.WithRetries(tc.retries))
			seedVersion(t, s.store, "LAMP", 1, 100)
			s.store.SetBeforeCommit(meet.Wait)
			errs := make(chan error, 2)
			for _, order := range []string{"o1", "o2"} {
				go func() { _, err := service.Allocate(ctx, s.uow, order, "LAMP", 10); errs <- err }()
			}
			failures := 0
			for range 2 {
				if err := <-errs; err != nil {
					require.ErrorIs(t, err, service.ErrConcurrentUpdate)
					require.ErrorIs(t, err, service.ErrRetriesExhausted)
					failures++
				}
			}
			p := s.product(t, "LAMP")
			assert.Equal(t, tc.failures, failures)
			assert.Equal(t, tc.version, p.VersionNumber)
			assert.Equal(t, tc.allocations, p.Batches[0].Allocations())
			assert.Equal(t, 10*tc.allocations, p.Batches[0].AllocatedQuantity())
		})
	}
}

// seedVersion stores a product at a given version, as the book's test does.
func seedVersion(t *testing.T, store *fakes.Store, sku string, version, qty int) {
	t.Helper()
	tx, _ := store.Begin(ctx)
	p := domain.NewProduct(sku, []*domain.Batch{domain.NewBatch("batch1", sku, qty, time.Time{})})
	p.VersionNumber = version
	require.NoError(t, tx.Add(ctx, p))
	require.NoError(t, tx.Commit(ctx))
}

// conflicting returns a store holding LAMP with a batch of qty, where the first upTo commits
// lose to a "concurrent writer", and the count of commit attempts.
func conflicting(t *testing.T, qty int, upTo int64) (*fakes.Store, *atomic.Int64) {
	store := fakes.NewStore()
	seedVersion(t, store, "LAMP", 0, qty)
	var attempts atomic.Int64
	store.SetBeforeCommit(func(_ context.Context, skus []string) {
		if attempts.Add(1) <= upTo {
			for _, sku := range skus {
				store.Touch(sku)
			}
		}
	})
	return store, &attempts
}

func TestRetriesAreBoundedAndExhaustionIsAnError(t *testing.T) {
	for _, budget := range []int{0, 1, 5} {
		t.Run(strconv.Itoa(budget), func(t *testing.T) {
			store, attempts := conflicting(t, 0, 1<<62)
			mailer := fakes.NewMailer()
			uow := service.Bootstrap(store, mailer, noBackoff, service.WithRetries(budget))
			_, err := service.Allocate(ctx, uow, "o1", "LAMP", 1)
			require.ErrorIs(t, err, service.ErrRetriesExhausted)
			require.ErrorIs(t, err, service.ErrConcurrentUpdate)
			assert.EqualValues(t, budget+1, attempts.Load(), "commit attempts")
			assert.Contains(t, err.Error(), "after "+strconv.Itoa(budget+1)+" attempts")
			assert.Zero(t, mailer.Len(), "events of failed attempts were published")
		})
	}
}

func TestUnlimitedRetriesKeepGoingAndPublishOnce(t *testing.T) {
	store, attempts := conflicting(t, 0, 100)
	mailer := fakes.NewMailer()
	uow := service.Bootstrap(store, mailer, noBackoff, service.WithRetries(service.Unlimited))
	_, err := service.Allocate(ctx, uow, "o1", "LAMP", 1)
	require.ErrorIs(t, err, domain.ErrOutOfStock)
	assert.EqualValues(t, 101, attempts.Load(), "commit attempts")
	assert.Equal(t, []string{"Out of stock for LAMP"}, mailer.To(service.StockAddress), "one mail for the attempt that committed")
}

func TestDefaultRetryBudget(t *testing.T) {
	store, attempts := conflicting(t, 5, 1<<62)
	uow := service.Bootstrap(store, fakes.NewMailer(), noBackoff)
	_, err := service.Allocate(ctx, uow, "o1", "LAMP", 1)
	require.ErrorIs(t, err, service.ErrRetriesExhausted)
	assert.EqualValues(t, service.DefaultRetries+1, attempts.Load())
}

func TestBackoffWaitsBetweenAttemptsAndStopsWithTheContext(t *testing.T) {
	store, _ := conflicting(t, 5, 1<<62)
	var waits []int
	cctx, cancel := context.WithCancel(ctx)
	uow := service.NewUnitOfWork(store, service.NewBus(), service.WithRetries(service.Unlimited),
		service.WithBackoff(func(attempt int) time.Duration {
			waits = append(waits, attempt)
			if attempt < 3 {
				return 0
			}
			cancel()
			return time.Hour // only the cancelled context ends this wait
		}))
	_, err := service.Allocate(cctx, uow, "o1", "LAMP", 1)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, []int{1, 2, 3}, waits)
}

func TestWorkCommittedInsideAHandlerJoinsTheRunningQueue(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 0)
	var j journal
	bus := s.uow.Bus()
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		j.add("note " + n.Name)
		if n.Name == "first" {
			_, err := service.Allocate(ctx, s.uow, "o1", "LAMP", 1) // commits an OutOfStock
			require.ErrorIs(t, err, domain.ErrOutOfStock)
			j.add("allocate returned")
		}
		return nil
	})
	service.Subscribe(bus, func(_ context.Context, e domain.OutOfStock) error {
		j.add("out of stock " + e.OrderID + " caused by " + e.CausationID)
		return nil
	})
	err := bus.Handle(ctx, note{Meta: domain.Meta{ID: "n1"}, Name: "first"}, note{Meta: domain.Meta{ID: "n2"}, Name: "second"})
	require.NoError(t, err)
	assert.Equal(t, []string{"note first", "allocate returned", "note second", "out of stock o1 caused by n1"}, j.get())
	assert.Equal(t, 1, s.mailer.Len(), "the mail was sent before Handle returned")
}

func TestBackoffReallyWaits(t *testing.T) {
	store, attempts := conflicting(t, 5, 1<<62)
	cctx, cancel := context.WithCancel(ctx)
	uow := service.NewUnitOfWork(store, service.NewBus(), service.WithRetries(service.Unlimited),
		service.WithBackoff(func(int) time.Duration { return time.Hour }))
	done := make(chan error)
	go func() { _, err := service.Allocate(cctx, uow, "o1", "LAMP", 1); done <- err }()
	time.Sleep(20 * time.Millisecond) // not a timing assertion: without a wait, attempts pile up meanwhile
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.EqualValues(t, 1, attempts.Load(), "attempts while the first backoff was due to last an hour")
}

// TestOneTransactorTakesBackoffIDsAndDispatcherPerCall: two callers share one Transactor (and so
// the command handlers Register bound to it), each with its own backoff, IDs and dispatcher on its
// context, and a command a handler sends on the bus runs with the caller's too.
func TestOneTransactorTakesBackoffIDsAndDispatcherPerCall(t *testing.T) {
	store, _ := conflicting(t, 2, 2) // the first two commits conflict
	mailer := fakes.NewMailer()
	uow := service.Bootstrap(store, mailer, service.WithBackoff(func(int) time.Duration {
		t.Error("the Transactor's own backoff ran, want the caller's")
		return 0
	}))
	type caller struct {
		ctx        context.Context
		waits      []int
		dispatched []string
	}
	newCaller := func(name string) *caller {
		c := &caller{}
		n := 0
		c.ctx = service.WithIDs(ctx, func() string { n++; return name + "-" + strconv.Itoa(n) })
		c.ctx = service.WithCallBackoff(c.ctx, func(attempt int) time.Duration { c.waits = append(c.waits, attempt); return 0 })
		c.ctx = service.WithCallDispatcher(c.ctx, func(ctx context.Context, events []domain.Event) error {
			for _, e := range events {
				c.dispatched = append(c.dispatched, e.Identity().ID)
				if err := uow.Bus().Handle(ctx, e); err != nil { // then on to the bus, as the default does
					return err
				}
			}
			return nil
		})
		return c
	}
	a, b := newCaller("a"), newCaller("b")
	_, err := service.Allocate(a.ctx, uow, "o1", "LAMP", 1)
	require.NoError(t, err, "Allocate o1 for a")
	_, err = service.Allocate(b.ctx, uow, "o2", "LAMP", 1)
	require.NoError(t, err, "Allocate o2 for b")
	assert.Equal(t, []int{1, 2}, a.waits, "a's backoff: both conflicts were a's")
	assert.Empty(t, b.waits, "b's backoff")
	assert.Equal(t, []string{"a-3"}, a.dispatched, "a's dispatcher (a-1 and a-2 were the conflicting attempts')")
	assert.Equal(t, []string{"b-1"}, b.dispatched, "b's dispatcher")

	// A quantity change deallocates o2, whose Deallocated sends an Allocate command: the command's
	// unit of work dispatches through b's dispatcher too, and out of stock mails.
	require.NoError(t, service.ChangeBatchQuantity(b.ctx, uow, "batch1", 1))
	assert.Equal(t, []string{"b-1", "b-2", "b-4"}, b.dispatched,
		"b's dispatcher: the Deallocated b-2, then the OutOfStock of its reallocation (b-3 is the Allocate command)")
	assert.Equal(t, []string{"a-3"}, a.dispatched, "a's dispatcher saw nothing of b's")
	assert.Equal(t, []string{"Out of stock for LAMP"}, mailer.To(service.StockAddress))
}

// TestEventsOfWorkInsideACallContinueTheCallsIDs: an Allocate command handed to the bus without
// an ID gets one from the call's own sequence, and the Allocated that its unit of work records
// takes the next one from that same sequence, not a number from outside the call.
func TestEventsOfWorkInsideACallContinueTheCallsIDs(t *testing.T) {
	var msgs []domain.Message
	trace := func(_ context.Context, m domain.Message, _ error) { msgs = append(msgs, m) }
	store := fakes.NewStore()
	uow := service.Bootstrap(store, fakes.NewMailer(), service.WithBusOptions(service.WithTrace(trace)))
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}))
	msgs = nil
	require.NoError(t, uow.Bus().Handle(ctx, domain.Allocate{OrderID: "o1", SKU: "LAMP", Qty: 1}))
	require.Len(t, msgs, 2, "the command and its Allocated")
	cmd, ev := msgs[0].Identity(), msgs[1].Identity()
	n, err := strconv.Atoi(cmd.ID[len("ev-"):])
	require.NoError(t, err, "command ID %q", cmd.ID)
	assert.Equal(t, domain.Meta{ID: "ev-" + strconv.Itoa(n+1), CausationID: cmd.ID}, ev)
}

// capture is a Publisher that keeps what it is handed.
type capture struct{ events []domain.Event }

func (c *capture) Publish(_ context.Context, _ string, e domain.Event) error {
	c.events = append(c.events, e)
	return nil
}

// TestEventsOutsideACallTakeTheCountersIDs: service.Allocate called outside any bus call and with
// no WithIDs numbers its events from the bus's counter, or, for a unit of work without a bus, from
// the unit of work's own: each event an ID of its own.
func TestEventsOutsideACallTakeTheCountersIDs(t *testing.T) {
	tests := []struct {
		name string
		// wire returns a unit of work on store whose committed Allocated events land in got.
		wire func(store *fakes.Store, got *capture) *service.Transactor
	}{
		{"bus", func(store *fakes.Store, got *capture) *service.Transactor {
			return service.Bootstrap(store, fakes.NewMailer(), service.WithPublisher(got))
		}},
		{"no bus", func(store *fakes.Store, got *capture) *service.Transactor {
			return service.NewUnitOfWork(store, nil, service.WithDispatcher(func(_ context.Context, events []domain.Event) error {
				got.events = append(got.events, events...)
				return nil
			}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, got := fakes.NewStore(), &capture{}
			seed := service.Bootstrap(store, fakes.NewMailer())
			require.NoError(t, service.AddBatch(ctx, seed, "b1", "LAMP", 10, time.Time{}))
			uow := tt.wire(store, got)
			for _, order := range []string{"o1", "o2", "o3"} {
				_, err := service.Allocate(ctx, uow, order, "LAMP", 1)
				require.NoError(t, err)
			}
			require.Len(t, got.events, 3, "Allocated events")
			ids := map[string]bool{}
			for _, e := range got.events {
				m := e.Identity()
				assert.Regexp(t, `^ev-[0-9]+$`, m.ID, "ID of %#v", e)
				assert.Empty(t, m.CausationID, "a root's cause")
				ids[m.ID] = true
			}
			assert.Len(t, ids, 3, "distinct IDs among %v", got.events)
		})
	}
}

// nudge is an event of the tests' own, whose handler allocates in a unit of work of its own.
type nudge struct {
	domain.Meta
	OrderID string
}

func (n nudge) WithIdentity(m domain.Meta) domain.Event { n.Meta = m; return n }

// TestWorkOfItsOwnIsStampedBeforeCommit: a unit of work whose fn records events on a product
// directly (nothing stamps them on record) still commits them identified, caused by the message
// whose handler ran it.
func TestWorkOfItsOwnIsStampedBeforeCommit(t *testing.T) {
	var msgs []domain.Message
	trace := func(_ context.Context, m domain.Message, _ error) { msgs = append(msgs, m) }
	store := fakes.NewStore()
	uow := service.Bootstrap(store, fakes.NewMailer(), service.WithBusOptions(service.WithTrace(trace)))
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}))
	service.Subscribe(uow.Bus(), func(ctx context.Context, n nudge) error {
		return uow.Do(ctx, func(ctx context.Context, repo service.Repository) error {
			p, err := repo.Get(ctx, "LAMP")
			if err != nil {
				return err
			}
			_, err = p.Allocate(domain.OrderLine{OrderID: n.OrderID, SKU: "LAMP", Qty: 1})
			return err
		})
	})
	msgs = nil
	require.NoError(t, uow.Bus().Handle(ctx, nudge{OrderID: "o1"}))
	require.Len(t, msgs, 2, "the nudge and its Allocated")
	cause, ev := msgs[0].Identity(), msgs[1].Identity()
	require.NotEmpty(t, cause.ID)
	assert.NotEmpty(t, ev.ID)
	assert.NotEqual(t, cause.ID, ev.ID)
	assert.Equal(t, cause.ID, ev.CausationID, "the Allocated's cause")
}
