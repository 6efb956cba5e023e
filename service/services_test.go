package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

func TestAddBatchCreatesTheProductThenAppends(t *testing.T) {
	s := newStack(t)
	tomorrow := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	require.NoError(t, service.AddBatch(ctx, s.uow, "b1", "CRUNCHY-ARMCHAIR", 100, time.Time{}))
	require.NoError(t, service.AddBatch(ctx, s.uow, "b2", "CRUNCHY-ARMCHAIR", 99, tomorrow))
	p := s.product(t, "CRUNCHY-ARMCHAIR")
	require.Len(t, p.Batches, 2)
	assert.Equal(t, "b1", p.Batches[0].Reference)
	assert.Equal(t, "b2", p.Batches[1].Reference)
	assert.Equal(t, 99, p.Batches[1].AvailableQuantity())
	assert.True(t, p.Batches[1].ETA.Equal(tomorrow))
}

func TestAddBatchRejectsBadInputAndChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ref, sku string
		qty      int
		want     error
	}{
		{"empty reference", "", "LAMP", 10, domain.ErrInvalidBatch},
		{"empty sku", "b9", "", 10, domain.ErrInvalidBatch},
		{"negative quantity", "b9", "LAMP", -1, domain.ErrInvalidBatch},
		{"quantity above the maximum", "b9", "LAMP", domain.MaxQty + 1, domain.ErrInvalidBatch},
		{"reference of the same product", "b1", "LAMP", 10, domain.ErrDuplicateBatch},
		{"reference of another product", "b1", "TABLE", 10, domain.ErrDuplicateBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			s.addBatch(t, "b1", "LAMP", 5)
			before := s.store.Revision("LAMP")
			err := service.AddBatch(ctx, s.uow, tc.ref, tc.sku, tc.qty, time.Time{})
			require.ErrorIs(t, err, tc.want, "AddBatch(%q, %q, %d)", tc.ref, tc.sku, tc.qty)
			assert.Equal(t, before, s.store.Revision("LAMP"))
			assert.Equal(t, []string{"LAMP"}, s.store.SKUs())
			assert.Len(t, s.product(t, "LAMP").Batches, 1)
		})
	}
}

func TestAddBatchQuantityZeroIsAnEmptyBatch(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 0)
	assert.Equal(t, 0, s.product(t, "LAMP").Batches[0].AvailableQuantity())
}

func TestAllocateReturnsTheBatchReference(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "batch1", "COMPLICATED-LAMP", 100)
	ref, err := service.Allocate(ctx, s.uow, "o1", "COMPLICATED-LAMP", 10)
	require.NoError(t, err)
	assert.Equal(t, "batch1", ref)
	assert.Equal(t, 90, s.product(t, "COMPLICATED-LAMP").Batches[0].AvailableQuantity())
}

func TestAllocateUnknownSKUCommitsNothing(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "AREALSKU", 100)
	before := s.store.Revision("AREALSKU")
	ref, err := service.Allocate(ctx, s.uow, "o1", "NONEXISTENTSKU", 10)
	require.ErrorIs(t, err, service.ErrInvalidSKU)
	assert.Equal(t, "invalid sku NONEXISTENTSKU", err.Error())
	assert.Empty(t, ref)
	assert.Equal(t, []string{"AREALSKU"}, s.store.SKUs())
	assert.Equal(t, before, s.store.Revision("AREALSKU"))
	assert.Zero(t, s.mailer.Len())
}

func TestOutOfStockCommitsMailsOnceAndTellsTheCaller(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "POPULAR-CURTAINS", 9)
	ref, err := service.Allocate(ctx, s.uow, "o1", "POPULAR-CURTAINS", 10)
	require.ErrorIs(t, err, domain.ErrOutOfStock)
	assert.Empty(t, ref)
	mails := s.mailer.Mails()
	require.Len(t, mails, 1)
	assert.Equal(t, "stock@made.com", mails[0].To)
	assert.Equal(t, "Out of stock for POPULAR-CURTAINS", mails[0].Body)
	cause, ok := mails[0].Cause.(domain.OutOfStock)
	require.True(t, ok, "mail caused by %T", mails[0].Cause)
	assert.Equal(t, "o1", cause.OrderID)
	assert.NotEmpty(t, cause.ID)
	assert.Equal(t, 9, s.product(t, "POPULAR-CURTAINS").Batches[0].AvailableQuantity())
}

func TestAllocateRejectsBadInputAndChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name         string
		order, sku   string
		qty          int
		want         error
		wantInErrMsg string
	}{
		{"zero quantity", "o1", "LAMP", 0, domain.ErrInvalidOrderLine, "got 0"},
		{"negative quantity", "o1", "LAMP", -350, domain.ErrInvalidOrderLine, "got -350"},
		{"huge quantity", "o1", "LAMP", domain.MaxQty + 1, domain.ErrInvalidOrderLine, "between 1 and"},
		{"empty sku", "o1", "", 1, domain.ErrInvalidOrderLine, "empty sku"},
		{"empty order id", "", "LAMP", 1, domain.ErrInvalidOrderLine, "empty order id"},
		{"same order, other quantity", "held", "LAMP", 3, domain.ErrOrderConflict, "holds 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			s.addBatch(t, "b1", "LAMP", 10)
			_, err := service.Allocate(ctx, s.uow, "held", "LAMP", 2)
			require.NoError(t, err)
			before := s.store.Revision("LAMP")
			ref, err := service.Allocate(ctx, s.uow, tc.order, tc.sku, tc.qty)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.wantInErrMsg)
			assert.Empty(t, ref)
			assert.Equal(t, before, s.store.Revision("LAMP"), "store changed")
			assert.Equal(t, 8, s.product(t, "LAMP").Batches[0].AvailableQuantity())
			assert.Zero(t, s.mailer.Len(), "mail sent")
			assert.Empty(t, s.handled.get(), "event published")
		})
	}
}

func TestResendingAnAllocatedOrderReturnsItsBatch(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 1) // full after the first allocation: a naive retry would be out of stock
	s.addBatch(t, "b2", "LAMP", 10)
	first, err := service.Allocate(ctx, s.uow, "o1", "LAMP", 1)
	require.NoError(t, err)
	rev := s.store.Revision("LAMP")
	again, err := service.Allocate(ctx, s.uow, "o1", "LAMP", 1)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Equal(t, rev, s.store.Revision("LAMP"), "store changed")
	assert.Equal(t, 1, s.product(t, "LAMP").VersionNumber)
	assert.Zero(t, s.mailer.Len())
}

func TestHandlerErrorOnAllocationIsDistinctAndKeepsTheAllocation(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "b1", "LAMP", 0)
	service.Subscribe(s.uow.Bus(), func(context.Context, domain.OutOfStock) error { return errBoom })
	_, err := service.Allocate(ctx, s.uow, "o1", "LAMP", 1)
	require.ErrorIs(t, err, service.ErrPublish)
	require.ErrorIs(t, err, domain.ErrOutOfStock, "the caller still learns it was out of stock")
	require.ErrorIs(t, err, errBoom)
}

// TestHotSKUManyWriters is the core issue's figure: 1000 orders of 1 against 500 in stock from 8
// goroutines, with a retry budget that cannot run out.
func TestHotSKUManyWriters(t *testing.T) {
	s := newStack(t, service.WithRetries(service.Unlimited))
	s.addBatch(t, "batch", "HOT", 500)
	const orders, writers = 1000, 8
	type outcome struct {
		order string
		ref   string
		err   error
	}
	results := make(chan outcome, orders)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < orders; i += writers {
				order := fmt.Sprintf("order-%04d", i)
				ref, err := service.Allocate(ctx, s.uow, order, "HOT", 1)
				results <- outcome{order, ref, err}
			}
		})
	}
	wg.Wait()
	close(results)
	allocated, outOfStock := map[string]bool{}, map[string]bool{}
	for r := range results {
		switch {
		case r.err == nil:
			require.Equal(t, "batch", r.ref)
			allocated[r.order] = true
		default:
			require.ErrorIs(t, r.err, domain.ErrOutOfStock, "order %s", r.order)
			outOfStock[r.order] = true
		}
	}
	p := s.product(t, "HOT")
	assert.Len(t, allocated, 500)
	assert.Len(t, outOfStock, 500)
	assert.Equal(t, 500, p.Batches[0].AllocatedQuantity())
	assert.Equal(t, 0, p.Batches[0].AvailableQuantity(), "over- or under-allocated")
	assert.Equal(t, 500, p.VersionNumber)
	lines := p.Batches[0].Lines()
	held := map[string]int{}
	for _, l := range lines {
		held[l.OrderID]++
	}
	for order, n := range held {
		assert.Equal(t, 1, n, "order %s allocated %d times", order, n)
		assert.True(t, allocated[order], "order %s held but the caller was told otherwise", order)
	}
	assert.Len(t, s.handled.get(), 500, "OutOfStock events handled")
	assert.Len(t, s.mailer.To(service.StockAddress), 500)
	for _, m := range s.mailer.Mails() {
		order := m.Cause.(domain.OutOfStock).OrderID
		assert.True(t, outOfStock[order], "mail for %s, which was not out of stock", order)
	}
}

func TestBootstrapPassesBusOptions(t *testing.T) {
	uow := service.Bootstrap(fakes.NewStore(), fakes.NewMailer(), service.WithBusOptions(service.WithErrorPolicy(service.Collect)))
	var calls []string
	service.Subscribe(uow.Bus(), func(context.Context, note) error { calls = append(calls, "1"); return errBoom })
	service.Subscribe(uow.Bus(), func(context.Context, note) error { calls = append(calls, "2"); return nil })
	require.ErrorIs(t, uow.Bus().Handle(ctx, note{}), errBoom)
	assert.Equal(t, "1,2", strings.Join(calls, ","), "Collect runs the second handler")
}
