package fakes_test

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// endedAndNext commits an allocation of o1 to A in a transaction and ends it as a unit of work
// does (Commit, then Rollback), so that its working memory goes back to the store; then it begins
// the next transaction, which reuses that memory, and allocates o2 to A in it, uncommitted.
func endedAndNext(t *testing.T, store *fakes.Store) (stale, next service.Tx, p *domain.Product) {
	t.Helper()
	stale, err := store.Begin(ctx)
	require.NoError(t, err)
	first, err := stale.Get(ctx, "A")
	require.NoError(t, err)
	_, err = first.Allocate(domain.OrderLine{OrderID: "o1", SKU: "A", Qty: 1})
	require.NoError(t, err)
	require.NoError(t, stale.Commit(ctx))
	stale.Rollback()

	next, err = store.Begin(ctx)
	require.NoError(t, err)
	p, err = next.Get(ctx, "A")
	require.NoError(t, err)
	_, err = p.Allocate(domain.OrderLine{OrderID: "o2", SKU: "A", Qty: 1})
	require.NoError(t, err)
	return stale, next, p
}

// TestEndedTransactionCannotReachTheNext keeps a transaction after Commit and Rollback, lets the
// next transaction reuse its working memory, and calls every method of the kept one: each fails
// with ErrTxDone or does nothing, and the next transaction's data is neither read nor changed.
func TestEndedTransactionCannotReachTheNext(t *testing.T) {
	tests := []struct {
		name string
		use  func(t *testing.T, stale service.Tx)
	}{
		{"Get", func(t *testing.T, stale service.Tx) {
			p, err := stale.Get(ctx, "A")
			assert.ErrorIs(t, err, fakes.ErrTxDone, "Get on the ended transaction")
			assert.Nil(t, p, "Get on the ended transaction returned a product")
		}},
		{"GetByBatchRef", func(t *testing.T, stale service.Tx) {
			p, err := stale.GetByBatchRef(ctx, "A-b1")
			assert.ErrorIs(t, err, fakes.ErrTxDone, "GetByBatchRef on the ended transaction")
			assert.Nil(t, p, "GetByBatchRef on the ended transaction returned a product")
		}},
		{"Add", func(t *testing.T, stale service.Tx) {
			assert.ErrorIs(t, stale.Add(ctx, domain.NewProduct("B", nil)), fakes.ErrTxDone, "Add on the ended transaction")
		}},
		{"Seen", func(t *testing.T, stale service.Tx) {
			assert.Empty(t, stale.Seen(), "Seen of the ended transaction")
		}},
		{"Commit", func(t *testing.T, stale service.Tx) {
			assert.ErrorIs(t, stale.Commit(ctx), fakes.ErrTxDone, "Commit of the ended transaction")
		}},
		{"Rollback", func(_ *testing.T, stale service.Tx) { stale.Rollback() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := fakes.NewStore()
			seedProduct(t, store, "A", 3, 100)
			stale, next, p := endedAndNext(t, store)
			tt.use(t, stale)

			assert.Equal(t, "v1 A-b0:0/0[] A-b1:100/1[{o1 A 1}] A-b2:100/0[]", state(t, store, "A"),
				"the store after %s on the ended transaction, before the next one commits", tt.name)
			assert.Equal(t, []*domain.Product{p}, next.Seen(), "the next transaction's products")
			assert.Equal(t, 2, p.VersionNumber, "the next transaction's copy")
			assert.Equal(t, []domain.OrderLine{{OrderID: "o1", SKU: "A", Qty: 1}, {OrderID: "o2", SKU: "A", Qty: 1}}, p.Batches[1].Lines(),
				"the next transaction's copy after %s on the ended transaction", tt.name)
			require.NoError(t, next.Commit(ctx), "the next transaction's commit")
			next.Rollback()
			assert.Equal(t, "v2 A-b0:0/0[] A-b1:100/2[{o1 A 1} {o2 A 1}] A-b2:100/0[]", state(t, store, "A"))
			_, ok := store.Product("B")
			assert.False(t, ok, "a product added through the ended transaction")
		})
	}
}

// TestEventsOutliveTheTransaction takes a committed transaction's events as the unit of work
// does (it hands them to the bus after its deferred Rollback), then runs another unit of work,
// which reuses the first one's working memory: the events handed over are still the first's.
func TestEventsOutliveTheTransaction(t *testing.T) {
	store := fakes.NewStore()
	seedProduct(t, store, "A", 3, 100)
	unit := func(order string) []domain.Event {
		tx, err := store.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback()
		p, err := tx.Get(ctx, "A")
		require.NoError(t, err)
		_, err = p.Allocate(domain.OrderLine{OrderID: order, SKU: "A", Qty: 1})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		events := p.Events
		p.Events = nil
		return events
	}
	first := unit("o1")
	second := unit("o2")
	want := func(order string) []domain.Event {
		return []domain.Event{domain.Allocated{OrderID: order, SKU: "A", Qty: 1, BatchRef: "A-b1"}}
	}
	assert.Equal(t, want("o1"), first, "the first unit's events after the second ran")
	assert.Equal(t, want("o2"), second, "the second unit's events")
}

// TestSupersededRecordsAreNotKept commits many units of work to a product of three batches,
// changing one batch each time or two in turn, and checks what stays on the heap per commit: its
// line, not its transaction. A stored record keeps the batches it did not change where the
// commit that changed them stored them, inside that commit's transaction; if a superseded record
// kept its own batches too, changes to two batches in turn would keep a chain of every
// transaction (295 bytes kept per commit in all, against 103 with the chain cut; 871 with the
// store of 21ae596, whose transactions were 768 bytes).
func TestSupersededRecordsAreNotKept(t *testing.T) {
	if raceEnabled {
		t.Skip("heap sizes are not meaningful under the race detector")
	}
	tests := []struct {
		name  string
		batch func(i int) int
	}{
		{name: "one batch changed", batch: func(int) int { return 1 }},
		{name: "two batches in turn", batch: func(i int) int { return 1 + i%2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const commits = 20_000
			store := fakes.NewStore()
			seedProduct(t, store, "A", 3, domain.MaxQty)
			orders := make([]string, commits)
			for i := range orders {
				orders[i] = "order-" + strconv.Itoa(i)
			}
			heap := func() uint64 {
				var m runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m)
				return m.HeapAlloc
			}
			before := heap()
			for i, id := range orders {
				tx, err := store.Begin(ctx)
				require.NoError(t, err)
				p, err := tx.Get(ctx, "A")
				require.NoError(t, err)
				p.Batches[tt.batch(i)].Allocate(domain.OrderLine{OrderID: id, SKU: "A", Qty: 1})
				require.NoError(t, tx.Commit(ctx))
				tx.Rollback()
			}
			kept := (int64(heap()) - int64(before)) / commits
			assert.Less(t, kept, int64(120), "bytes kept per commit")
			runtime.KeepAlive(orders)
			runtime.KeepAlive(store)
		})
	}
}

// TestUnitOfWorkAllocations pins the allocations of a unit of work on the store (begin, load,
// allocate, commit, rollback, as service.Transactor runs it): the transaction handle, which holds
// what its commit stores, and the event the domain boxes; a read-only one allocates its handle
// only. The working copy lies in memory an ended transaction gave back.
func TestUnitOfWorkAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	tests := []struct {
		name     string
		batches  int
		allocate bool
		most     float64
	}{
		{name: "one batch", batches: 1, allocate: true, most: 2},
		{name: "three batches", batches: 3, allocate: true, most: 2},
		{name: "three batches, read only", batches: 3, most: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := fakes.NewStore()
			batches := make([]*domain.Batch, tt.batches)
			for i := range batches {
				batches[i] = domain.NewBatch("A-b"+strconv.Itoa(i), "A", domain.MaxQty, time.Date(2030, 1, 1+i, 0, 0, 0, 0, time.UTC))
			}
			seed, err := store.Begin(ctx)
			require.NoError(t, err)
			require.NoError(t, seed.Add(ctx, domain.NewProduct("A", batches)))
			require.NoError(t, seed.Commit(ctx))
			orders := make([]string, 1001)
			for i := range orders {
				orders[i] = "order-" + strconv.Itoa(i)
			}
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				tx, _ := store.Begin(ctx)
				defer tx.Rollback()
				p, err := tx.Get(ctx, "A")
				if err != nil {
					panic(err)
				}
				if tt.allocate {
					if _, err := p.Allocate(domain.OrderLine{OrderID: orders[i], SKU: "A", Qty: 1}); err != nil {
						panic(err)
					}
				}
				if err := tx.Commit(ctx); err != nil {
					panic(err)
				}
				i++
			})
			assert.LessOrEqual(t, allocs, tt.most, "allocations per unit of work")
		})
	}
}

// TestReusedWorkUnderConcurrentUnitsOfWork runs units of work from several goroutines on one
// store, so that transactions' working memory passes between goroutines (run it with -race): every
// allocation is stored once, in the batch the product's preference says, and each unit's copy was
// its own (a copy shared with another unit would lose or double allocations, or trip the race
// detector).
func TestReusedWorkUnderConcurrentUnitsOfWork(t *testing.T) {
	const workers, each = 4, 150
	uow, store, _ := fakes.New(service.WithRetries(service.Unlimited), service.WithBackoff(func(int) time.Duration { return 0 }))
	require.NoError(t, service.AddBatch(ctx, uow, "A-warehouse", "A", workers*each, time.Time{}))
	require.NoError(t, service.AddBatch(ctx, uow, "A-later", "A", 10, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)))
	require.NoError(t, service.AddBatch(ctx, uow, "B-warehouse", "B", workers*each, time.Time{}))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				sku := []string{"A", "B"}[(w+i)%2]
				ref, err := service.Allocate(ctx, uow, fmt.Sprintf("w%d-%d", w, i), sku, 1)
				if err == nil && ref != sku+"-warehouse" {
					err = fmt.Errorf("order w%d-%d of %s went to %s", w, i, sku, ref)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	a, _ := store.Product("A")
	b, _ := store.Product("B")
	assert.Equal(t, []int{workers * each / 2, 0}, []int{a.Batches[0].AllocatedQuantity(), a.Batches[1].AllocatedQuantity()}, "A's batches")
	assert.Equal(t, workers*each/2, b.Batches[0].Allocations(), "B's lines")
	assert.Equal(t, workers*each, a.VersionNumber+b.VersionNumber, "versions: one step per allocation")
}
