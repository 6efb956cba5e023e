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

// trail records every message the bus handled, in order, as "Type key=value ...".
type trail struct {
	mu   sync.Mutex
	msgs []domain.Message
	errs []error
}

func (tr *trail) trace(_ context.Context, m domain.Message, err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.msgs = append(tr.msgs, m)
	tr.errs = append(tr.errs, err)
}

func (tr *trail) lines() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, m := range tr.msgs {
		out = append(out, describe(m))
	}
	return out
}

func describe(m domain.Message) string {
	switch m := m.(type) {
	case domain.ChangeBatchQuantity:
		return fmt.Sprintf("ChangeBatchQuantity %s %d", m.Ref, m.Qty)
	case domain.Allocate:
		return fmt.Sprintf("Allocate %s %d", m.OrderID, m.Qty)
	case domain.Allocated:
		return fmt.Sprintf("Allocated %s %s", m.OrderID, m.BatchRef)
	case domain.Deallocated:
		return fmt.Sprintf("Deallocated %s %d", m.OrderID, m.Qty)
	case domain.OutOfStock:
		return fmt.Sprintf("OutOfStock %s", m.OrderID)
	}
	return fmt.Sprintf("%T", m)
}

type chainStack struct {
	uow       *service.Transactor
	store     *fakes.Store
	mailer    *fakes.Mailer
	publisher *fakes.Publisher
	trail     *trail
}

func newChainStack(t *testing.T, busOpts ...service.BusOption) *chainStack {
	t.Helper()
	s := &chainStack{store: fakes.NewStore(), mailer: fakes.NewMailer(), publisher: fakes.NewPublisher(), trail: &trail{}}
	s.uow = service.Bootstrap(s.store, s.mailer, noBackoff, service.WithPublisher(s.publisher),
		service.WithBusOptions(append(busOpts, service.WithTrace(s.trail.trace))...))
	return s
}

func (s *chainStack) send(t *testing.T, cmds ...domain.Message) error {
	t.Helper()
	return s.uow.Bus().Handle(ctx, cmds...)
}

// bookReallocation is the book's scenario: batch1 of 50 in the warehouse and batch2 of 50 arriving
// today; order1 and order2 of 20 both go to batch1.
func bookReallocation(t *testing.T, s *chainStack) {
	t.Helper()
	today := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	require.NoError(t, s.send(t,
		domain.CreateBatch{Ref: "batch1", SKU: "INDIFFERENT-TABLE", Qty: 50},
		domain.CreateBatch{Ref: "batch2", SKU: "INDIFFERENT-TABLE", Qty: 50, ETA: today},
		domain.Allocate{OrderID: "order1", SKU: "INDIFFERENT-TABLE", Qty: 20},
		domain.Allocate{OrderID: "order2", SKU: "INDIFFERENT-TABLE", Qty: 20},
	))
	s.trail.msgs, s.trail.errs = nil, nil
}

func TestChangingBatchQuantityReallocatesTheBooksWay(t *testing.T) {
	s := newChainStack(t)
	bookReallocation(t, s)
	require.NoError(t, s.send(t, domain.ChangeBatchQuantity{Meta: domain.Meta{ID: "c1"}, Ref: "batch1", Qty: 25}))
	p, _ := s.store.Product("INDIFFERENT-TABLE")
	assert.Equal(t, 5, p.Batches[0].AvailableQuantity(), "batch1")
	assert.Equal(t, 30, p.Batches[1].AvailableQuantity(), "batch2")
	assert.Equal(t, []string{
		"ChangeBatchQuantity batch1 25",
		"Deallocated order2 20", // the most recently allocated line goes first
		"Allocate order2 20",
		"Allocated order2 batch2",
	}, s.trail.lines())
	assert.Zero(t, s.mailer.Len())
}

func TestEveryMessageCarriesItsCause(t *testing.T) {
	s := newChainStack(t)
	bookReallocation(t, s)
	require.NoError(t, s.send(t, domain.ChangeBatchQuantity{Meta: domain.Meta{ID: "c1"}, Ref: "batch1", Qty: 25}))
	msgs := s.trail.msgs
	require.Len(t, msgs, 4)
	for i := 1; i < len(msgs); i++ {
		assert.NotEmpty(t, msgs[i].Identity().ID, "message %d has an id", i)
		assert.Equal(t, msgs[i-1].Identity().ID, msgs[i].Identity().CausationID, "%s caused by %s", describe(msgs[i]), describe(msgs[i-1]))
	}
}

func TestAChangeThatLeavesNoStockMailsOncePerLine(t *testing.T) {
	s := newChainStack(t)
	require.NoError(t, s.send(t,
		domain.CreateBatch{Ref: "only", SKU: "LAMP", Qty: 10},
		domain.Allocate{OrderID: "o1", SKU: "LAMP", Qty: 4},
		domain.Allocate{OrderID: "o2", SKU: "LAMP", Qty: 6},
	))
	s.trail.msgs = nil
	require.NoError(t, s.send(t, domain.ChangeBatchQuantity{Ref: "only", Qty: 0}))
	assert.Equal(t, []string{
		"ChangeBatchQuantity only 0",
		"Deallocated o2 6",
		"Deallocated o1 4",
		"Allocate o2 6",
		"Allocate o1 4",
		"OutOfStock o2",
		"OutOfStock o1",
	}, s.trail.lines())
	assert.Equal(t, []string{"Out of stock for LAMP", "Out of stock for LAMP"}, s.mailer.To(service.StockAddress))
	p, _ := s.store.Product("LAMP")
	assert.Zero(t, p.Allocated())
}

func TestAllocatedIsPublished(t *testing.T) {
	s := newChainStack(t)
	require.NoError(t, s.send(t,
		domain.CreateBatch{Ref: "b1", SKU: "LAMP", Qty: 10},
		domain.Allocate{OrderID: "o1", SKU: "LAMP", Qty: 4},
	))
	published := s.publisher.Published()
	require.Len(t, published, 1)
	assert.Equal(t, service.AllocatedChannel, published[0].Channel)
	e := published[0].Event.(domain.Allocated)
	assert.Equal(t, domain.Allocated{Meta: e.Meta, OrderID: "o1", SKU: "LAMP", Qty: 4, BatchRef: "b1"}, e)
}

func TestOutOfStockIsAResultThatLetsTheChainGoOn(t *testing.T) {
	s := newChainStack(t)
	err := s.send(t,
		domain.CreateBatch{Ref: "b1", SKU: "LAMP", Qty: 1},
		domain.Allocate{OrderID: "o1", SKU: "LAMP", Qty: 5}, // out of stock: not an error of the command
		domain.Allocate{OrderID: "o2", SKU: "LAMP", Qty: 1},
	)
	require.NoError(t, err)
	assert.Equal(t, 1, s.mailer.Len())
	assert.Len(t, s.publisher.Published(), 1)
}

func TestChangeBatchQuantityRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  domain.ChangeBatchQuantity
		want error
	}{
		{"unknown batch", domain.ChangeBatchQuantity{Ref: "nope", Qty: 5}, domain.ErrUnknownBatch},
		{"negative quantity", domain.ChangeBatchQuantity{Ref: "b1", Qty: -1}, domain.ErrInvalidBatch},
		{"quantity above the maximum", domain.ChangeBatchQuantity{Ref: "b1", Qty: domain.MaxQty + 1}, domain.ErrInvalidBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newChainStack(t)
			require.NoError(t, s.send(t, domain.CreateBatch{Ref: "b1", SKU: "LAMP", Qty: 10}, domain.Allocate{OrderID: "o1", SKU: "LAMP", Qty: 4}))
			rev := s.store.Revision("LAMP")
			err := s.send(t, tc.cmd, domain.Allocate{OrderID: "o2", SKU: "LAMP", Qty: 1})
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, rev, s.store.Revision("LAMP"), "a failed command changed the store, or the queue went on after it")
		})
	}
}

func TestHandlerFailingInTheMiddleOfAChain(t *testing.T) {
	for _, tc := range []struct {
		policy service.ErrorPolicy
		want   []string
	}{
		// Propagate: the failing Deallocated handler stops the call: nothing is reallocated.
		{service.Propagate, []string{"ChangeBatchQuantity only 0", "Deallocated o2 6"}},
		// Collect: the failure is reported, and every other handler and message still runs.
		{service.Collect, []string{"ChangeBatchQuantity only 0", "Deallocated o2 6", "Deallocated o1 4",
			"Allocate o2 6", "Allocate o1 4", "OutOfStock o2", "OutOfStock o1"}},
	} {
		t.Run(fmt.Sprint(tc.policy), func(t *testing.T) {
			s := newChainStack(t, service.WithErrorPolicy(tc.policy))
			require.NoError(t, s.send(t,
				domain.CreateBatch{Ref: "only", SKU: "LAMP", Qty: 10},
				domain.Allocate{OrderID: "o1", SKU: "LAMP", Qty: 4},
				domain.Allocate{OrderID: "o2", SKU: "LAMP", Qty: 6},
			))
			s.trail.msgs, s.trail.errs = nil, nil
			service.Subscribe(s.uow.Bus(), func(context.Context, domain.Deallocated) error { return errBoom })
			err := s.send(t, domain.ChangeBatchQuantity{Ref: "only", Qty: 0})
			require.ErrorIs(t, err, errBoom)
			assert.Equal(t, tc.want, s.trail.lines())
			assert.ErrorIs(t, s.trail.errs[1], errBoom, "the trace reports the failure on the message")
			assert.NoError(t, s.trail.errs[0])
			for i, line := range s.trail.lines() {
				if strings.HasPrefix(line, "Allocate ") || strings.HasPrefix(line, "OutOfStock") {
					assert.NoError(t, s.trail.errs[i], "%s: earlier failures are not its own", line)
				}
			}
		})
	}
}

func TestTraceSeesPanicsAndFailedCommands(t *testing.T) {
	var tr trail
	bus := service.NewBus(service.WithTrace(tr.trace), service.WithErrorPolicy(service.Collect))
	service.HandleCommand(bus, func(context.Context, order) error { panic("kaboom") })
	service.Subscribe(bus, func(context.Context, note) error { panic("again") })
	service.Subscribe(bus, func(context.Context, note) error { return nil })
	err := bus.Handle(ctx, note{Name: "n"}, order{Name: "o"}, note{Name: "never"})
	require.ErrorIs(t, err, service.ErrHandlerPanic)
	require.Len(t, tr.msgs, 2, "traced: %v", tr.msgs)
	assert.ErrorIs(t, tr.errs[0], service.ErrHandlerPanic)
	assert.ErrorIs(t, tr.errs[1], service.ErrHandlerPanic)
	assert.True(t, strings.Contains(tr.errs[1].Error(), "kaboom"))
}
