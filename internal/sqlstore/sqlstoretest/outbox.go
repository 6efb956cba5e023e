package sqlstoretest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/service"
)

// OutboxStore is what the outbox table's contract needs of a SQL store.
type OutboxStore interface {
	Store
	outbox.Store
	OutboxCounts() (pending, done int)
}

// OutboxHarness opens the stores of the outbox table's contract.
type OutboxHarness struct {
	// Open returns a new, empty store, closed when the test ends.
	Open func(t *testing.T) OutboxStore
	// Another opens one more store on s's database (as another process would), closed when the
	// test ends; opening it upgrades the schema.
	Another func(t *testing.T, s OutboxStore) OutboxStore
	// Relays is how many relays the crash drain runs, relay i on its own store from Another for
	// i > 0: several only where processes share the table without waiting on each other.
	Relays int
	// Downgrade takes s's database back to schema version 1 (an outbox without claims), keeping
	// its rows; SchemaVersion is the version a store upgrades it to, and Version reads it.
	Downgrade     func(t *testing.T, s OutboxStore)
	SchemaVersion int
	Version       func(t *testing.T, s OutboxStore) int
}

// TestOutbox runs the outbox table's contract against h's stores: the port's (outboxtest.TestStore),
// the rows written in the commit, the crash drain (outboxtest.Drain) and the upgrade of a version 1
// table.
func TestOutbox(t *testing.T, h OutboxHarness) {
	open := func(t *testing.T) OutboxStore {
		s := h.Open(t)
		s.EnableOutbox()
		return s
	}
	t.Run("port", func(t *testing.T) {
		outboxtest.TestStore(t, func(t *testing.T) (service.Store, outbox.Store) { s := open(t); return s, s })
	})
	t.Run("written in the commit", func(t *testing.T) { writtenInTheCommit(t, open(t)) })
	t.Run("a commit's several events are rows in their order", func(t *testing.T) { severalEventsInOneCommit(t, open(t)) })
	t.Run("crashed relays lose nothing", func(t *testing.T) { crashedRelaysLoseNothing(t, h, open) })
	t.Run("a version 1 table is upgraded", func(t *testing.T) {
		s := open(t)
		outboxtest.Orders(t, s, "LAMP", 1, 2)
		h.Downgrade(t, s)
		again := h.Another(t, s)
		assert.Equal(t, h.SchemaVersion, h.Version(t, again), "schema version after the upgrade")
		rows, err := again.Claim(ctx, "r1", outboxtest.Start, outboxtest.Start.Add(time.Minute), 10)
		require.NoError(t, err)
		assert.Len(t, rows, 2, "the version 1 rows, claimable")
	})
}

// The commit writes its events as outbox rows, in commit order with their stamped IDs; a commit
// that conflicts writes none.
func writtenInTheCommit(t *testing.T, s OutboxStore) {
	uow := service.Bootstrap(s, fakes.NewMailer(), service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
	addBatch(t, s, "LAMP", "b1", 1)
	for _, order := range []string{"o1", "o2", "o3"} {
		_, err := service.Allocate(ctx, uow, order, "LAMP", 5)
		require.ErrorIs(t, err, domain.ErrOutOfStock)
	}
	rows := s.Outbox()
	require.Len(t, rows, 3)
	assert.Less(t, rows[0].Seq, rows[1].Seq)
	assert.Equal(t, "o1", rows[0].Event.(domain.OutOfStock).OrderID)
	assert.NotEmpty(t, rows[0].Event.Identity().ID, "rows carry the stamped event ID")
	pending, done := s.OutboxCounts()
	assert.Equal(t, [2]int{3, 0}, [2]int{pending, done}, "pending and done rows")

	s.SetBeforeCommit(func(_ context.Context, skus []string) { s.Touch(skus[0]) })
	_, err := service.Allocate(ctx, service.NewUnitOfWork(s, uow.Bus(), service.WithRetries(0),
		service.WithDispatcher(func(context.Context, []domain.Event) error { return nil })), "o4", "LAMP", 5)
	require.ErrorIs(t, err, service.ErrConcurrentUpdate)
	assert.Len(t, s.Outbox(), 3, "a failed commit stored outbox rows")
}

// The done-when: h.Relays relays on the hot sku (a batch of 500, 1,000 orders of 1: 500
// Allocated and 500 OutOfStock rows), each incarnation crashing after its 40th send, before the
// mark of its claim of 25, restarted under a new name and left to wait out its dead predecessor's
// lease.
func crashedRelaysLoseNothing(t *testing.T, h OutboxHarness, open func(t *testing.T) OutboxStore) {
	for _, c := range []struct {
		name       string
		dedup      bool
		crashEvery int
	}{
		{"de-duplicating mailer: no mail lost or duplicated", true, 40},
		{"plain mailer: the duplicates are the rows sent and not marked", false, 40},
		{"no crash: no duplicate, and each relay sends in commit order", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			stores := []outbox.Store{s}
			for len(stores) < h.Relays {
				stores = append(stores, h.Another(t, s))
			}
			plan := outboxtest.Crashes{Relays: len(stores), CrashEvery: c.crashEvery, Batch: 25, Stock: 500, Orders: 1000, Dedup: c.dedup, Stores: stores}
			d := outboxtest.Drain(t, s, s, plan)
			d.Check(t, plan)
			t.Logf("%d rows, %d sent and not marked, %d incarnations, %d rounds", len(d.Rows), len(d.Unmarked), d.Incarnations, d.Rounds)
		})
	}
}

// A commit that records several events (a batch shrunk below two of its lines deallocates both)
// writes one row for each, in the order recorded.
func severalEventsInOneCommit(t *testing.T, s OutboxStore) {
	uow := service.Bootstrap(s, fakes.NewMailer(), service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
	addBatch(t, s, "LAMP", "b1", 3)
	for _, order := range []string{"o1", "o2", "o3"} {
		_, err := service.Allocate(ctx, uow, order, "LAMP", 1)
		require.NoError(t, err)
	}
	require.NoError(t, service.ChangeBatchQuantity(ctx, uow, "b1", 1))
	rows := s.Outbox()
	require.Len(t, rows, 5, "three Allocated rows, then one per line deallocated")
	log, err := s.EventLog(ctx)
	require.NoError(t, err)
	require.Len(t, log, 5, "logged events")
	orders := map[string]bool{}
	for i, row := range rows[3:] {
		d, ok := row.Event.(domain.Deallocated)
		require.True(t, ok, "row %d is %T, want domain.Deallocated", row.Seq, row.Event)
		orders[d.OrderID] = true
		assert.Equal(t, log[3+i].Event.Identity().ID, row.ID(), "row %d against the event log, which keeps the recorded order", 3+i)
	}
	assert.Len(t, orders, 2, "two lines deallocated")
}
