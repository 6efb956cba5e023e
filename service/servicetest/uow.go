package servicetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// HookedStore is a Store with the test hooks of fakes.Store, which every store of this module
// offers so that forced interleavings run on any of them.
type HookedStore interface {
	service.Store
	// SetBeforeCommit sets a hook that runs at the start of every Commit, before the store
	// checks for conflicts or takes a lock, with the skus the transaction saw. nil removes it.
	SetBeforeCommit(h func(ctx context.Context, skus []string))
	// Touch makes the product look changed by another commit; it reports whether it exists.
	Touch(sku string) bool
	// Product returns the stored product, or false.
	Product(sku string) (*domain.Product, bool)
}

// TestUnitOfWork runs the unit of work on stores made by newStore (a new, empty store on every
// call): the book's two writers with the interleaving forced, Touch, and many writers on one
// hot sku with an unlimited retry budget.
func TestUnitOfWork(t *testing.T, newStore func() HookedStore) {
	t.Helper()
	checks := []struct {
		name  string
		check func(t *testing.T, s HookedStore)
	}{
		{"two writers, load load commit commit: one conflict, version +1", twoWriters},
		{"a touched product conflicts and nothing is stored", touched},
		{"hot sku: 500 units, 1000 orders, 8 writers, unlimited retries", hotSKU},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			s := newStore()
			defer s.SetBeforeCommit(nil)
			c.check(t, s)
		})
	}
}

// mailbox is a service.Mailer that keeps what it was sent.
type mailbox struct {
	mu    sync.Mutex
	mails []service.Mail
}

func (m *mailbox) Send(_ context.Context, mail service.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, mail)
	return nil
}

func (m *mailbox) sent() []service.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]service.Mail(nil), m.mails...)
}

// barrier holds the first n callers until all n have arrived; later ones pass.
type barrier struct {
	mu      sync.Mutex
	n, seen int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait(ctx context.Context, _ []string) {
	b.mu.Lock()
	if b.seen >= b.n {
		b.mu.Unlock()
		return
	}
	b.seen++
	if b.seen == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-ctx.Done():
	}
}

func stored(t *testing.T, s HookedStore, sku string) *domain.Product {
	t.Helper()
	p, ok := s.Product(sku)
	require.True(t, ok, "Product(%q) of the store", sku)
	return p
}

func twoWriters(t *testing.T, s HookedStore) {
	mail := &mailbox{}
	uow := service.Bootstrap(s, mail, service.WithRetries(0))
	require.NoError(t, service.AddBatch(ctx, uow, "batch1", "CHAIR", 100, time.Time{}))
	s.SetBeforeCommit(newBarrier(2).wait)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = service.Allocate(ctx, uow, fmt.Sprintf("order%d", i+1), "CHAIR", 10) })
	}
	wg.Wait()
	var conflicts, loser int
	for i, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, service.ErrConcurrentUpdate, "writer %d", i+1)
			conflicts, loser = conflicts+1, i
		}
	}
	require.Equal(t, 1, conflicts, "conflicts among two writers that both loaded before either committed: %v", errs)
	p := stored(t, s, "CHAIR")
	assert.Equal(t, 1, p.VersionNumber, "version after one winning allocation")
	assert.Equal(t, 90, p.Batches[0].AvailableQuantity())

	_, err := service.Allocate(ctx, uow, fmt.Sprintf("order%d", loser+1), "CHAIR", 10) // the retry, from the start
	require.NoError(t, err, "retrying the loser")
	p = stored(t, s, "CHAIR")
	assert.Equal(t, 2, p.VersionNumber)
	assert.Equal(t, 2, p.Batches[0].Allocations())
}

func touched(t *testing.T, s HookedStore) {
	uow := service.Bootstrap(s, &mailbox{}, service.WithRetries(0))
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 5, time.Time{}))
	s.SetBeforeCommit(func(_ context.Context, skus []string) {
		for _, sku := range skus {
			s.Touch(sku)
		}
	})
	_, err := service.Allocate(ctx, uow, "o1", "LAMP", 1)
	require.ErrorIs(t, err, service.ErrConcurrentUpdate, "allocate after the product was touched")
	s.SetBeforeCommit(nil)
	assert.Equal(t, 0, stored(t, s, "LAMP").Batches[0].Allocations(), "a conflicting commit stored a line")
	assert.False(t, s.Touch("NOPE"), "Touch of a missing sku")
}

func hotSKU(t *testing.T, s HookedStore) {
	mail := &mailbox{}
	uow := service.Bootstrap(s, mail, service.WithRetries(service.Unlimited))
	require.NoError(t, service.AddBatch(ctx, uow, "batch", "HOT", 500, time.Time{}))
	const orders, writers = 1000, 8
	var mu sync.Mutex
	allocated, outOfStock := map[string]bool{}, map[string]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < orders; i += writers {
				order := fmt.Sprintf("order-%04d", i)
				_, err := service.Allocate(ctx, uow, order, "HOT", 1)
				mu.Lock()
				switch {
				case err == nil:
					allocated[order] = true
				case assert.ErrorIs(t, err, domain.ErrOutOfStock, "order %s", order):
					outOfStock[order] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p := stored(t, s, "HOT")
	assert.Len(t, allocated, 500, "orders allocated")
	assert.Len(t, outOfStock, 500, "orders out of stock")
	assert.Equal(t, 500, p.Batches[0].AllocatedQuantity())
	assert.Equal(t, 500, p.VersionNumber)
	for _, l := range p.Batches[0].Lines() {
		assert.True(t, allocated[l.OrderID], "order %s held but its caller was told otherwise", l.OrderID)
	}
	mails := mail.sent()
	assert.Len(t, mails, 500, "out-of-stock mails")
	for _, m := range mails {
		assert.Equal(t, service.StockAddress, m.To)
		e, ok := m.Cause.(domain.OutOfStock)
		if assert.True(t, ok, "mail caused by %T", m.Cause) {
			assert.True(t, outOfStock[e.OrderID], "mail for %s, which was not out of stock", e.OrderID)
		}
	}
}
