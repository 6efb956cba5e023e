package fakes_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

var ctx = context.Background()

// outboxStack is a unit of work that stores events in the outbox instead of publishing them.
func outboxStack(t *testing.T) (*service.Transactor, *fakes.Store) {
	t.Helper()
	store := fakes.NewStore()
	store.EnableOutbox()
	uow := service.Bootstrap(store, fakes.NewMailer(),
		service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 1, time.Time{}))
	return uow, store
}

func outOfStock(t *testing.T, uow service.UnitOfWork, order string) {
	t.Helper()
	_, err := service.Allocate(ctx, uow, order, "LAMP", 5)
	require.ErrorIs(t, err, domain.ErrOutOfStock)
}

func TestOutboxStoresCommittedEventsInOrder(t *testing.T) {
	uow, store := outboxStack(t)
	outOfStock(t, uow, "o1")
	outOfStock(t, uow, "o2")
	rows := store.Pending(10)
	require.Len(t, rows, 2)
	assert.Equal(t, []uint64{1, 2}, []uint64{rows[0].Seq, rows[1].Seq})
	assert.Equal(t, "o1", rows[0].Event.(domain.OutOfStock).OrderID)
	assert.NotEmpty(t, rows[0].Event.Identity().ID, "rows carry the stamped event ID")
	assert.Len(t, store.Pending(1), 1, "limit")
}

func TestOutboxKeepsNothingFromFailedCommits(t *testing.T) {
	uow, store := outboxStack(t)
	store.SetBeforeCommit(func(_ context.Context, skus []string) { store.Touch(skus[0]) })
	_, err := service.Allocate(ctx, service.NewUnitOfWork(store, uow.Bus(), service.WithRetries(0)), "o1", "LAMP", 5)
	require.ErrorIs(t, err, service.ErrConcurrentUpdate)
	assert.Empty(t, store.Outbox())
}

func TestOutboxMarkDone(t *testing.T) {
	uow, store := outboxStack(t)
	for _, o := range []string{"o1", "o2", "o3"} {
		outOfStock(t, uow, o)
	}
	rows := store.Pending(10)
	store.MarkDone(rows[1].Event.Identity().ID, "unknown")
	pending, done := store.OutboxCounts()
	assert.Equal(t, 2, pending)
	assert.Equal(t, 1, done)
	assert.Equal(t, []uint64{1, 3}, seqs(store.Pending(10)))
	store.MarkDone(rows[0].Event.Identity().ID)
	assert.Equal(t, []uint64{3}, seqs(store.Pending(10)))
	store.MarkDone(rows[2].Event.Identity().ID, rows[2].Event.Identity().ID)
	assert.Empty(t, store.Pending(10))
	pending, done = store.OutboxCounts()
	assert.Equal(t, 0, pending)
	assert.Equal(t, 3, done)
	assert.Len(t, store.Outbox(), 3, "done rows are kept for the record")
}

func TestOutboxIsOffByDefault(t *testing.T) {
	uow, store, _ := fakes.New()
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 1, time.Time{}))
	outOfStock(t, uow, "o1")
	assert.Empty(t, store.Outbox())
}

func seqs(rows []fakes.OutboxRow) []uint64 {
	var s []uint64
	for _, r := range rows {
		s = append(s, r.Seq)
	}
	return s
}
