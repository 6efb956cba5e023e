package fakes_test

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/service/servicetest"
)

func TestStoreContract(t *testing.T) {
	servicetest.TestStore(t, func() service.Store { return fakes.NewStore() })
}

func TestUnitOfWorkOnStore(t *testing.T) {
	servicetest.TestUnitOfWork(t, func() servicetest.HookedStore { return fakes.NewStore() })
}

// seedProduct stores a product of sku with n batches: the first holds no stock, so an allocation
// goes to the second (or fails when there is none), and the rest hold qty each with later ETAs.
func seedProduct(t *testing.T, store *fakes.Store, sku string, n, qty int) {
	t.Helper()
	batches := make([]*domain.Batch, n)
	for i := range batches {
		qty, eta := qty, time.Date(2030, 1, 1+i, 0, 0, 0, 0, time.UTC)
		if i == 0 {
			qty = 0
		}
		batches[i] = domain.NewBatch(fmt.Sprintf("%s-b%d", sku, i), sku, qty, eta)
	}
	tx, err := store.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, tx.Add(ctx, domain.NewProduct(sku, batches)))
	require.NoError(t, tx.Commit(ctx))
}

// state describes a stored product: each batch's reference, quantities and lines.
func state(t *testing.T, store *fakes.Store, sku string) string {
	t.Helper()
	p, ok := store.Product(sku)
	require.True(t, ok, "product %s", sku)
	s := fmt.Sprintf("v%d", p.VersionNumber)
	for _, b := range p.Batches {
		s += fmt.Sprintf(" %s:%d/%d%v", b.Reference, b.PurchasedQuantity(), b.AllocatedQuantity(), b.Lines())
	}
	return s
}

// TestCommitsKeepEveryBatch commits allocations to products of one to more batches than a
// transaction has room for, one or two products per transaction (the second has no room of
// its own), and checks what is stored after each commit, that a copy changed after its commit
// does not reach the store, and that a transaction that loaded the old state conflicts.
func TestCommitsKeepEveryBatch(t *testing.T) {
	for _, batches := range []int{2, 3, 4, 6} {
		for _, products := range []int{1, 2} {
			t.Run(fmt.Sprintf("batches=%d/products=%d", batches, products), func(t *testing.T) {
				store := fakes.NewStore()
				skus := []string{"A", "B"}[:products]
				for _, sku := range skus {
					seedProduct(t, store, sku, batches, 100)
				}
				for round := range 3 {
					stale, err := store.Begin(ctx)
					require.NoError(t, err)
					_, err = stale.Get(ctx, skus[0])
					require.NoError(t, err)

					tx, err := store.Begin(ctx)
					require.NoError(t, err)
					var copies []*domain.Product
					for _, sku := range skus {
						p, err := tx.Get(ctx, sku)
						require.NoError(t, err)
						_, err = p.Allocate(domain.OrderLine{OrderID: "o" + strconv.Itoa(round), SKU: sku, Qty: 1 + round})
						require.NoError(t, err, "allocate to %s", sku)
						copies = append(copies, p)
					}
					require.NoError(t, tx.Commit(ctx))
					for _, sku := range skus {
						want := fmt.Sprintf("v%d %s-b0:0/0[] %s-b1:100/%d[", round+1, sku, sku, (round+1)*(round+2)/2)
						for r := range round + 1 {
							if r > 0 {
								want += " "
							}
							want += fmt.Sprintf("{o%d %s %d}", r, sku, r+1)
						}
						want += "]"
						for i := 2; i < batches; i++ {
							want += fmt.Sprintf(" %s-b%d:100/0[]", sku, i)
						}
						before := state(t, store, sku)
						require.Equal(t, want, before, "round %d: %s after the commit", round, sku)
					}
					for i, p := range copies {
						before := state(t, store, skus[i])
						_, err := p.Allocate(domain.OrderLine{OrderID: "late", SKU: skus[i], Qty: 1})
						require.NoError(t, err)
						p.Batches[len(p.Batches)-1].Allocate(domain.OrderLine{OrderID: "later", SKU: skus[i], Qty: 1})
						assert.Equal(t, before, state(t, store, skus[i]), "round %d: a change to %s after its commit reached the store", round, skus[i])
					}
					assert.ErrorIs(t, stale.Commit(ctx), service.ErrConcurrentUpdate, "round %d: a transaction that loaded the old state", round)
				}
			})
		}
	}
}

// TestCommitAllocatesNothingForAFewBatches pins a unit of work on a product of three batches:
// its transaction, and the Allocated event boxed in the product's events; the copy and the
// stored state are the transaction's room, and the stored state keeps the unchanged batches.
func TestCommitAllocatesNothingForAFewBatches(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	store := fakes.NewStore()
	seedProduct(t, store, "A", 3, domain.MaxQty)
	orders := make([]string, 1001)
	for i := range orders {
		orders[i] = "order-" + strconv.Itoa(i)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		tx, _ := store.Begin(ctx)
		p, err := tx.Get(ctx, "A")
		if err != nil {
			panic(err)
		}
		if _, err := p.Allocate(domain.OrderLine{OrderID: orders[i], SKU: "A", Qty: 1}); err != nil {
			panic(err)
		}
		if err := tx.Commit(ctx); err != nil {
			panic(err)
		}
		i++
	})
	assert.LessOrEqual(t, allocs, 2.0, "allocations per load, allocate and commit of a product of 3 batches")
	p, _ := store.Product("A")
	assert.Equal(t, []int{0, 1001, 0}, []int{p.Batches[0].Allocations(), p.Batches[1].Allocations(), p.Batches[2].Allocations()}, "lines per batch")
}

// TestCommittedTransactionsAreNotKept commits many units of work to a product of three batches
// and checks what stays on the heap per commit: its line, not its transaction. A transaction's
// room holds what its commit stored, and it loaded what the one before stored, from that one's
// room: a chain of them all would keep some 700 bytes per commit.
func TestCommittedTransactionsAreNotKept(t *testing.T) {
	if raceEnabled {
		t.Skip("heap sizes are not meaningful under the race detector")
	}
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
	for _, id := range orders {
		tx, err := store.Begin(ctx)
		require.NoError(t, err)
		p, err := tx.Get(ctx, "A")
		require.NoError(t, err)
		_, err = p.Allocate(domain.OrderLine{OrderID: id, SKU: "A", Qty: 1})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
	kept := (int64(heap()) - int64(before)) / commits
	assert.Less(t, kept, int64(300), "bytes kept per commit")
	runtime.KeepAlive(orders)
	runtime.KeepAlive(store)
}
