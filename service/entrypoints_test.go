package service_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// The service layer's entry point service.ChangeBatchQuantity runs the ChangeBatchQuantity
// command's handler directly (not on the bus), and the bus handles the chain its events start.

func batchOf(t *testing.T, s *chainStack, sku, ref string) *domain.Batch {
	t.Helper()
	p, ok := s.store.Product(sku)
	require.True(t, ok, "product %s is stored", sku)
	b, ok := p.Batch(ref)
	require.True(t, ok, "product %s holds batch %s", sku, ref)
	return b
}

func TestChangeBatchQuantityEntryPointReallocatesTheBooksWay(t *testing.T) {
	s := newChainStack(t)
	bookReallocation(t, s)
	publishedBefore := len(s.publisher.Published())

	require.NoError(t, service.ChangeBatchQuantity(ctx, s.uow, "batch1", 25))

	assert.Equal(t, 5, batchOf(t, s, "INDIFFERENT-TABLE", "batch1").AvailableQuantity(), "batch1")
	assert.Equal(t, 30, batchOf(t, s, "INDIFFERENT-TABLE", "batch2").AvailableQuantity(), "batch2")
	_, held := batchOf(t, s, "INDIFFERENT-TABLE", "batch2").Holds("order2", "INDIFFERENT-TABLE")
	assert.True(t, held, "order2 moved to batch2")
	// The entry point does not send the command on the bus: the chain starts with its events.
	assert.Equal(t, []string{"Deallocated order2 20", "Allocate order2 20", "Allocated order2 batch2"}, s.trail.lines())
	msgs := s.trail.msgs
	for i := 1; i < len(msgs); i++ {
		assert.Equal(t, msgs[i-1].Identity().ID, msgs[i].Identity().CausationID, "%s caused by %s", describe(msgs[i]), describe(msgs[i-1]))
	}
	published := s.publisher.Published()[publishedBefore:]
	require.Len(t, published, 1)
	assert.Equal(t, service.AllocatedChannel, published[0].Channel)
	e := published[0].Event.(domain.Allocated)
	assert.Equal(t, domain.Allocated{Meta: e.Meta, OrderID: "order2", SKU: "INDIFFERENT-TABLE", Qty: 20, BatchRef: "batch2"}, e)
	assert.Zero(t, s.mailer.Len(), "no mail")
}

func TestChangeBatchQuantityEntryPointToZeroWithNowhereToGoMailsAndSucceeds(t *testing.T) {
	s := newChainStack(t)
	require.NoError(t, s.send(t,
		domain.CreateBatch{Ref: "only", SKU: "LAMP", Qty: 10},
		domain.Allocate{OrderID: "o1", SKU: "LAMP", Qty: 4},
		domain.Allocate{OrderID: "o2", SKU: "LAMP", Qty: 6},
	))
	s.trail.msgs, s.trail.errs = nil, nil

	// Out of stock is a result of the Allocate commands of the chain, not an error of the change.
	require.NoError(t, service.ChangeBatchQuantity(ctx, s.uow, "only", 0))

	assert.Equal(t, []string{"Out of stock for LAMP", "Out of stock for LAMP"}, s.mailer.To(service.StockAddress))
	assert.Zero(t, batchOf(t, s, "LAMP", "only").Allocations())
	assert.Equal(t, []string{"Deallocated o2 6", "Deallocated o1 4", "Allocate o2 6", "Allocate o1 4",
		"OutOfStock o2", "OutOfStock o1"}, s.trail.lines())
}

func TestChangeBatchQuantityEntryPointRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  string
		qty  int
		want error
		text string
	}{
		{"negative quantity", "b1", -1, domain.ErrInvalidBatch, `change batch "b1": invalid batch: qty must be between 0 and 1000000000, got -1`},
		{"quantity above the maximum", "b1", domain.MaxQty + 1, domain.ErrInvalidBatch, "got 1000000001"},
		{"unknown reference", "nope", 5, domain.ErrUnknownBatch, `change batch "nope": unknown batch reference`},
		{"empty reference", "", 5, domain.ErrUnknownBatch, `change batch "": unknown batch reference`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newChainStack(t)
			require.NoError(t, s.send(t,
				domain.CreateBatch{Ref: "b1", SKU: "LAMP", Qty: 10},
				domain.Allocate{OrderID: "o1", SKU: "LAMP", Qty: 4},
			))
			s.trail.msgs, s.trail.errs = nil, nil
			rev, published := s.store.Revision("LAMP"), len(s.publisher.Published())

			err := service.ChangeBatchQuantity(ctx, s.uow, tc.ref, tc.qty)

			require.ErrorIs(t, err, tc.want)
			assert.NotErrorIs(t, err, service.ErrPublish)
			assert.Contains(t, err.Error(), tc.text)
			assert.Equal(t, rev, s.store.Revision("LAMP"), "nothing committed")
			b := batchOf(t, s, "LAMP", "b1")
			assert.Equal(t, 10, b.PurchasedQuantity())
			assert.Equal(t, 6, b.AvailableQuantity())
			assert.Empty(t, s.trail.lines(), "the bus handled nothing")
			assert.Zero(t, s.mailer.Len(), "no mail")
			assert.Len(t, s.publisher.Published(), published, "nothing published")
		})
	}
}

// A handler failing on Deallocated fails the handling of the events that the committed change
// recorded: the entry point's error wraps service.ErrPublish (the change is stored) and the
// handler's error. Under Propagate the rest of the chain is dropped, so the deallocated lines
// stay allocated nowhere; under Collect the chain finishes and they move to batch2.
func TestChangeBatchQuantityEntryPointWrapsAFailingHandlerInErrPublish(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy service.ErrorPolicy
		moved  int
		trail  []string
	}{
		{"propagate", service.Propagate, 0, []string{"Deallocated order2 20"}},
		{"collect", service.Collect, 2, []string{"Deallocated order2 20", "Deallocated order1 20", "Allocate order2 20",
			"Allocate order1 20", "Allocated order2 batch2", "Allocated order1 batch2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newChainStack(t, service.WithErrorPolicy(tc.policy))
			bookReallocation(t, s)
			service.Subscribe(s.uow.Bus(), func(context.Context, domain.Deallocated) error { return errBoom })

			err := service.ChangeBatchQuantity(ctx, s.uow, "batch1", 0)

			require.ErrorIs(t, err, service.ErrPublish)
			require.ErrorIs(t, err, errBoom)
			assert.Equal(t, 0, batchOf(t, s, "INDIFFERENT-TABLE", "batch1").PurchasedQuantity(), "the change is committed")
			assert.Zero(t, batchOf(t, s, "INDIFFERENT-TABLE", "batch1").Allocations())
			assert.Equal(t, tc.moved, batchOf(t, s, "INDIFFERENT-TABLE", "batch2").Allocations(), "lines allocated again")
			assert.Equal(t, tc.trail, s.trail.lines())
			assert.ErrorIs(t, s.trail.errs[0], errBoom, "the trace reports the failure on the first Deallocated")
			assert.Zero(t, s.mailer.Len())
		})
	}
}
