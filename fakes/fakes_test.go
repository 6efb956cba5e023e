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

func TestReadOnlyCommitsKeepTheRevision(t *testing.T) {
	uow, store, _ := fakes.New()
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 0, time.Time{}))
	rev := store.Revision("LAMP")
	_, err := service.Allocate(ctx, uow, "o1", "LAMP", 1)
	require.ErrorIs(t, err, domain.ErrOutOfStock)
	assert.Equal(t, rev, store.Revision("LAMP"), "an out-of-stock commit changed nothing stored")
	_, err = service.Allocate(ctx, uow, "o1", "NOPE", 1)
	require.Error(t, err)
	assert.Zero(t, store.Revision("NOPE"))
}

func TestTouchForcesAConflict(t *testing.T) {
	uow, store, _ := fakes.New(service.WithRetries(0))
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}))
	assert.False(t, store.Touch("NOPE"))
	store.SetBeforeCommit(func(_ context.Context, skus []string) {
		for _, sku := range skus {
			require.True(t, store.Touch(sku))
		}
	})
	_, err := service.Allocate(ctx, uow, "o1", "LAMP", 1)
	require.ErrorIs(t, err, service.ErrConcurrentUpdate)
	store.SetBeforeCommit(nil)
	_, err = service.Allocate(ctx, uow, "o1", "LAMP", 1)
	require.NoError(t, err)
}

func TestAfterCommitHookRunsOnlyForCommitsThatSucceeded(t *testing.T) {
	uow, store, _ := fakes.New(service.WithRetries(0))
	var after [][]string
	store.SetAfterCommit(func(_ context.Context, skus []string) { after = append(after, skus) })
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}))
	store.SetBeforeCommit(func(_ context.Context, skus []string) { store.Touch("LAMP") })
	_, err := service.Allocate(ctx, uow, "o1", "LAMP", 1)
	require.Error(t, err)
	assert.Equal(t, [][]string{{"LAMP"}}, after)
}

func TestRendezvousHoldsTheFirstNThenLetsEveryoneThrough(t *testing.T) {
	r := fakes.NewRendezvous(2)
	arrived := make(chan int, 3)
	go func() { r.Wait(ctx, nil); arrived <- 1 }()
	select {
	case <-arrived:
		t.Fatal("the first caller went on alone")
	case <-time.After(20 * time.Millisecond):
	}
	r.Wait(ctx, nil) // the second releases both
	assert.Equal(t, 1, <-arrived)
	r.Wait(ctx, nil) // later callers pass straight through
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	fakes.NewRendezvous(2).Wait(cctx, nil) // a done context does not block
}

func TestTransactionIsUnusableAfterCommit(t *testing.T) {
	store := fakes.NewStore()
	tx, err := store.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	assert.ErrorIs(t, tx.Commit(ctx), fakes.ErrTxDone)
	_, err = tx.Get(ctx, "LAMP")
	assert.ErrorIs(t, err, fakes.ErrTxDone)
	_, err = tx.GetByBatchRef(ctx, "b1")
	assert.ErrorIs(t, err, fakes.ErrTxDone)
	assert.ErrorIs(t, tx.Add(ctx, domain.NewProduct("LAMP", nil)), fakes.ErrTxDone)
}

func TestAddingASKUTwiceInOneTransactionFails(t *testing.T) {
	tx, _ := fakes.NewStore().Begin(ctx)
	require.NoError(t, tx.Add(ctx, domain.NewProduct("LAMP", nil)))
	assert.Error(t, tx.Add(ctx, domain.NewProduct("LAMP", nil)))
}

func TestProductReturnsACopy(t *testing.T) {
	uow, store, _ := fakes.New()
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}))
	p, ok := store.Product("LAMP")
	require.True(t, ok)
	p.Batches[0].Allocate(domain.OrderLine{OrderID: "o1", SKU: "LAMP", Qty: 3})
	again, _ := store.Product("LAMP")
	assert.Equal(t, 10, again.Batches[0].AvailableQuantity())
	_, ok = store.Product("NOPE")
	assert.False(t, ok)
}
