// Package servicetest checks implementations of the service layer's ports, in the manner of
// testing/fstest: an adapter for a real database gets the same checks the fakes pass.
package servicetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// TestStore runs the contract of service.Store against stores made by newStore, which must
// return a new, empty store on every call.
func TestStore(t *testing.T, newStore func() service.Store) {
	t.Helper()
	checks := []struct {
		name  string
		check func(t *testing.T, s service.Store)
	}{
		{"get of a missing sku is ErrNotFound and marks nothing seen", missing},
		{"added product is stored on commit with its batches and version", addAndLoad},
		{"get twice in one transaction returns the same product", sameProduct},
		{"seen keeps first-seen order", seenOrder},
		{"uncommitted changes are invisible to other transactions", isolation},
		{"rollback stores nothing and ends the transaction", rollback},
		{"a commit that would overwrite a newer commit fails and applies nothing", conflict},
		{"adding a sku another commit added conflicts", addRace},
		{"batch references are unique across products", uniqueRefs},
		{"get by batch reference finds the product and marks it seen", byBatchRef},
		{"pending events are not stored", eventsNotStored},
		{"changes after commit do not reach the store", noLeakAfterCommit},
		{"many writers with retry lose no update", manyWriters},
		{"a commit whose unchanged seen product changed since load conflicts", staleRead},
		{"two readers of an unchanged product both commit", twoReaders},
		{"commits to unrelated products do not conflict", unrelated},
		{"etas, batch order, quantities and allocation order survive a commit", roundTrip},
		{"deallocated lines and changed quantities are stored", deallocation},
		{"get by batch reference of a seen product returns the same product", byBatchRefSeen},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.check(t, newStore()) })
	}
}

var ctx = context.Background()

// seed commits one product with the given batches of qty 100 each.
func seed(t *testing.T, s service.Store, sku string, refs ...string) {
	t.Helper()
	tx, err := s.Begin(ctx)
	require.NoError(t, err)
	p := domain.NewProduct(sku, nil)
	for _, ref := range refs {
		require.NoError(t, p.AddBatch(domain.NewBatch(ref, sku, 100, time.Time{})))
	}
	require.NoError(t, tx.Add(ctx, p))
	require.NoError(t, tx.Commit(ctx), "commit of new product %s", sku)
}

func load(t *testing.T, s service.Store, sku string) *domain.Product {
	t.Helper()
	tx, err := s.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback()
	p, err := tx.Get(ctx, sku)
	require.NoError(t, err, "Get(%q)", sku)
	return p
}

func allocate(t *testing.T, p *domain.Product, orderID string) {
	t.Helper()
	_, err := p.Allocate(domain.OrderLine{OrderID: orderID, SKU: p.SKU, Qty: 1})
	require.NoError(t, err, "Allocate(%s) on %s", orderID, p.SKU)
}

func missing(t *testing.T, s service.Store) {
	tx, err := s.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback()
	p, err := tx.Get(ctx, "NOPE")
	assert.Nil(t, p)
	assert.ErrorIs(t, err, service.ErrNotFound, "Get of a missing sku")
	assert.Empty(t, tx.Seen())
}

func addAndLoad(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1", "b2")
	tx, _ := s.Begin(ctx)
	p, err := tx.Get(ctx, "LAMP")
	require.NoError(t, err)
	allocate(t, p, "o1")
	require.NoError(t, tx.Commit(ctx))

	got := load(t, s, "LAMP")
	assert.Equal(t, 1, got.VersionNumber)
	require.Len(t, got.Batches, 2)
	assert.Equal(t, 99, got.Batches[0].AvailableQuantity())
	assert.Equal(t, []string{"b1", "b2"}, []string{got.Batches[0].Reference, got.Batches[1].Reference})
}

func sameProduct(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1")
	tx, _ := s.Begin(ctx)
	defer tx.Rollback()
	a, err := tx.Get(ctx, "LAMP")
	require.NoError(t, err)
	b, err := tx.Get(ctx, "LAMP")
	require.NoError(t, err)
	assert.Same(t, a, b)
	assert.Len(t, tx.Seen(), 1)
}

func seenOrder(t *testing.T, s service.Store) {
	seed(t, s, "B", "b1")
	seed(t, s, "A", "a1")
	tx, _ := s.Begin(ctx)
	defer tx.Rollback()
	_, _ = tx.Get(ctx, "B")
	require.NoError(t, tx.Add(ctx, domain.NewProduct("C", nil)))
	_, _ = tx.Get(ctx, "A")
	_, _ = tx.Get(ctx, "B")
	var skus []string
	for _, p := range tx.Seen() {
		skus = append(skus, p.SKU)
	}
	assert.Equal(t, []string{"B", "C", "A"}, skus)
}

func isolation(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1")
	tx, _ := s.Begin(ctx)
	defer tx.Rollback()
	p, _ := tx.Get(ctx, "LAMP")
	allocate(t, p, "o1")
	assert.Equal(t, 100, load(t, s, "LAMP").Batches[0].AvailableQuantity(), "another transaction sees uncommitted work")
}

func rollback(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1")
	tx, _ := s.Begin(ctx)
	p, _ := tx.Get(ctx, "LAMP")
	allocate(t, p, "o1")
	require.NoError(t, tx.Add(ctx, domain.NewProduct("NEW", nil)))
	tx.Rollback()
	assert.Error(t, tx.Commit(ctx), "Commit after Rollback")
	assert.Equal(t, 0, load(t, s, "LAMP").VersionNumber)
	check, _ := s.Begin(ctx)
	defer check.Rollback()
	_, err := check.Get(ctx, "NEW")
	assert.ErrorIs(t, err, service.ErrNotFound, "product added in a rolled-back transaction")
}

func conflict(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1")
	first, _ := s.Begin(ctx)
	second, _ := s.Begin(ctx)
	p1, _ := first.Get(ctx, "LAMP")
	p2, _ := second.Get(ctx, "LAMP")
	allocate(t, p1, "o1")
	allocate(t, p2, "o2")
	require.NoError(t, second.Add(ctx, domain.NewProduct("OTHER", nil)))
	require.NoError(t, first.Commit(ctx))
	err := second.Commit(ctx)
	require.ErrorIs(t, err, service.ErrConcurrentUpdate, "second commit of a product changed since load")

	got := load(t, s, "LAMP")
	assert.Equal(t, 1, got.VersionNumber)
	_, held := got.Batches[0].Holds("o1", "LAMP")
	assert.True(t, held, "the first commit's allocation")
	_, held = got.Batches[0].Holds("o2", "LAMP")
	assert.False(t, held, "the conflicting commit's allocation")
	check, _ := s.Begin(ctx)
	defer check.Rollback()
	_, err = check.Get(ctx, "OTHER")
	assert.ErrorIs(t, err, service.ErrNotFound, "a failed commit is all or nothing")
}

func addRace(t *testing.T, s service.Store) {
	first, _ := s.Begin(ctx)
	second, _ := s.Begin(ctx)
	require.NoError(t, first.Add(ctx, domain.NewProduct("LAMP", nil)))
	require.NoError(t, second.Add(ctx, domain.NewProduct("LAMP", nil)))
	require.NoError(t, first.Commit(ctx))
	assert.ErrorIs(t, second.Commit(ctx), service.ErrConcurrentUpdate)
}

func uniqueRefs(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "shared")
	tx, _ := s.Begin(ctx)
	p := domain.NewProduct("TABLE", nil)
	require.NoError(t, p.AddBatch(domain.NewBatch("shared", "TABLE", 5, time.Time{})))
	require.NoError(t, tx.Add(ctx, p))
	assert.ErrorIs(t, tx.Commit(ctx), domain.ErrDuplicateBatch)
	check, _ := s.Begin(ctx)
	defer check.Rollback()
	_, err := check.Get(ctx, "TABLE")
	assert.ErrorIs(t, err, service.ErrNotFound)
}

func byBatchRef(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1", "b2")
	tx, _ := s.Begin(ctx)
	defer tx.Rollback()
	p, err := tx.GetByBatchRef(ctx, "b2")
	require.NoError(t, err)
	assert.Equal(t, "LAMP", p.SKU)
	assert.Equal(t, []*domain.Product{p}, tx.Seen())
	_, err = tx.GetByBatchRef(ctx, "nope")
	assert.ErrorIs(t, err, service.ErrNotFound)
	assert.Len(t, tx.Seen(), 1)
}

func eventsNotStored(t *testing.T, s service.Store) {
	seed(t, s, "LAMP")
	tx, _ := s.Begin(ctx)
	p, _ := tx.Get(ctx, "LAMP")
	_, err := p.Allocate(domain.OrderLine{OrderID: "o1", SKU: "LAMP", Qty: 1})
	require.ErrorIs(t, err, domain.ErrOutOfStock)
	require.NoError(t, tx.Commit(ctx))
	assert.Empty(t, load(t, s, "LAMP").Events)
}

func noLeakAfterCommit(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1")
	tx, _ := s.Begin(ctx)
	p, _ := tx.Get(ctx, "LAMP")
	allocate(t, p, "o1")
	require.NoError(t, tx.Commit(ctx))
	allocate(t, p, "o2")
	assert.Equal(t, 99, load(t, s, "LAMP").Batches[0].AvailableQuantity())
}

func manyWriters(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1")
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := commitWithRetry(s, fmt.Sprintf("w%d-%d", w, i)); err != nil {
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
	got := load(t, s, "LAMP")
	assert.Equal(t, writers*each, got.Batches[0].AllocatedQuantity(), "allocations lost to concurrent commits")
	assert.Equal(t, writers*each, got.VersionNumber)
}

func commitWithRetry(s service.Store, orderID string) error {
	for {
		tx, err := s.Begin(ctx)
		if err != nil {
			return err
		}
		p, err := tx.Get(ctx, "LAMP")
		if err != nil {
			tx.Rollback()
			return err
		}
		if _, err := p.Allocate(domain.OrderLine{OrderID: orderID, SKU: "LAMP", Qty: 1}); err != nil {
			tx.Rollback()
			return err
		}
		err = tx.Commit(ctx)
		if !errors.Is(err, service.ErrConcurrentUpdate) {
			return err
		}
	}
}

func staleRead(t *testing.T, s service.Store) {
	seed(t, s, "READ", "r1")
	seed(t, s, "WRITE", "w1")
	tx, _ := s.Begin(ctx)
	_, err := tx.Get(ctx, "READ") // the work decides from READ without changing it
	require.NoError(t, err)
	p, err := tx.Get(ctx, "WRITE")
	require.NoError(t, err)
	allocate(t, p, "o1")

	other, _ := s.Begin(ctx)
	q, err := other.Get(ctx, "READ")
	require.NoError(t, err)
	allocate(t, q, "o2")
	require.NoError(t, other.Commit(ctx))

	assert.ErrorIs(t, tx.Commit(ctx), service.ErrConcurrentUpdate, "commit after a product it read was changed")
	got := load(t, s, "WRITE")
	assert.Equal(t, 0, got.VersionNumber, "the failed commit's change to WRITE")
	assert.Equal(t, 0, got.Batches[0].Allocations())
}

func twoReaders(t *testing.T, s service.Store) {
	seed(t, s, "READ", "r1")
	seed(t, s, "A", "a1")
	seed(t, s, "B", "b1")
	first, _ := s.Begin(ctx)
	second, _ := s.Begin(ctx)
	for _, w := range []struct {
		tx       service.Tx
		sku, ord string
	}{{first, "A", "o1"}, {second, "B", "o2"}} {
		_, err := w.tx.Get(ctx, "READ")
		require.NoError(t, err)
		p, err := w.tx.Get(ctx, w.sku)
		require.NoError(t, err)
		allocate(t, p, w.ord)
	}
	require.NoError(t, first.Commit(ctx), "first reader of READ")
	require.NoError(t, second.Commit(ctx), "second reader of READ")
	assert.Equal(t, 1, load(t, s, "A").VersionNumber)
	assert.Equal(t, 1, load(t, s, "B").VersionNumber)
	assert.Equal(t, 0, load(t, s, "READ").VersionNumber)
}

func unrelated(t *testing.T, s service.Store) {
	seed(t, s, "A", "a1")
	seed(t, s, "B", "b1")
	first, _ := s.Begin(ctx)
	second, _ := s.Begin(ctx)
	a, err := first.Get(ctx, "A")
	require.NoError(t, err)
	b, err := second.Get(ctx, "B")
	require.NoError(t, err)
	allocate(t, a, "o1")
	allocate(t, b, "o2")
	require.NoError(t, first.Commit(ctx))
	require.NoError(t, second.Commit(ctx), "a commit to B after one to A, both loaded before either committed")
}

func roundTrip(t *testing.T, s service.Store) {
	tomorrow := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	tx, _ := s.Begin(ctx)
	p := domain.NewProduct("LAMP", nil)
	require.NoError(t, p.AddBatch(domain.NewBatch("later", "LAMP", 10, tomorrow.Add(24*time.Hour))))
	require.NoError(t, p.AddBatch(domain.NewBatch("tomorrow", "LAMP", 10, tomorrow)))
	require.NoError(t, p.AddBatch(domain.NewBatch("warehouse", "LAMP", 3, time.Time{})))
	require.NoError(t, tx.Add(ctx, p))
	require.NoError(t, tx.Commit(ctx))

	for _, order := range []string{"o3", "o1", "o2", "o4"} {
		tx, _ := s.Begin(ctx)
		p, err := tx.Get(ctx, "LAMP")
		require.NoError(t, err)
		allocate(t, p, order)
		require.NoError(t, tx.Commit(ctx), "commit of %s", order)
	}
	got := load(t, s, "LAMP")
	require.Len(t, got.Batches, 3)
	assert.Equal(t, []string{"later", "tomorrow", "warehouse"}, []string{got.Batches[0].Reference, got.Batches[1].Reference, got.Batches[2].Reference})
	assert.True(t, got.Batches[1].ETA.Equal(tomorrow), "eta %v, want %v", got.Batches[1].ETA, tomorrow)
	assert.True(t, got.Batches[2].ETA.IsZero(), "warehouse stock has no eta, got %v", got.Batches[2].ETA)
	assert.Equal(t, 4, got.VersionNumber)
	lines := func(b *domain.Batch) (ids []string) {
		for _, l := range b.Lines() {
			ids = append(ids, l.OrderID)
		}
		return ids
	}
	assert.Equal(t, []string{"o3", "o1", "o2"}, lines(got.Batches[2]), "allocation order in the warehouse batch")
	assert.Equal(t, []string{"o4"}, lines(got.Batches[1]), "the next preferred batch")
	assert.Equal(t, 9, got.Batches[1].AvailableQuantity())
}

func deallocation(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1")
	for _, order := range []string{"o1", "o2", "o3"} {
		tx, _ := s.Begin(ctx)
		p, _ := tx.Get(ctx, "LAMP")
		allocate(t, p, order)
		require.NoError(t, tx.Commit(ctx))
	}
	tx, _ := s.Begin(ctx)
	p, err := tx.Get(ctx, "LAMP")
	require.NoError(t, err)
	require.NoError(t, p.ChangeBatchQuantity("b1", 1)) // deallocates o3 and o2, the newest first
	require.NoError(t, tx.Commit(ctx))
	got := load(t, s, "LAMP")
	assert.Equal(t, 1, got.Batches[0].PurchasedQuantity())
	assert.Equal(t, []domain.OrderLine{{OrderID: "o1", SKU: "LAMP", Qty: 1}}, got.Batches[0].Lines())

	tx, _ = s.Begin(ctx) // a deallocated order can come back, after the lines that stayed
	p, _ = tx.Get(ctx, "LAMP")
	require.NoError(t, p.ChangeBatchQuantity("b1", 5))
	allocate(t, p, "o3")
	require.NoError(t, tx.Commit(ctx))
	var ids []string
	for _, l := range load(t, s, "LAMP").Batches[0].Lines() {
		ids = append(ids, l.OrderID)
	}
	assert.Equal(t, []string{"o1", "o3"}, ids)
}

func byBatchRefSeen(t *testing.T, s service.Store) {
	seed(t, s, "LAMP", "b1", "b2")
	tx, _ := s.Begin(ctx)
	defer tx.Rollback()
	a, err := tx.Get(ctx, "LAMP")
	require.NoError(t, err)
	b, err := tx.GetByBatchRef(ctx, "b2")
	require.NoError(t, err)
	assert.Same(t, a, b)
	assert.Len(t, tx.Seen(), 1)
}
