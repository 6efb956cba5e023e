package service

import (
	"context"

	"github.com/stockbus/stockbus/domain"
)

// StockAddress is where out-of-stock notifications go.
const StockAddress = "stock@made.com"

// Mail is one message sent through a Mailer. Cause is the event that made a handler send it.
type Mail struct {
	To, Subject, Body string
	Cause             domain.Event
}

// Mailer sends mail. Implementations must be safe for concurrent use.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// Publisher sends events to other systems; the book's chapter 11 publishes Allocated to a broker.
// Implementations must be safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, channel string, e domain.Event) error
}

// AllocatedChannel is the channel Allocated events are published on.
const AllocatedChannel = "line_allocated"

// NotifyOutOfStock returns the handler that mails StockAddress "Out of stock for <SKU>".
func NotifyOutOfStock(mailer Mailer) func(ctx context.Context, e domain.OutOfStock) error {
	return func(ctx context.Context, e domain.OutOfStock) error {
		text := "Out of stock for " + e.SKU
		return mailer.Send(ctx, Mail{To: StockAddress, Subject: text, Body: text, Cause: e})
	}
}

// PublishAllocated returns the handler that publishes Allocated events on AllocatedChannel.
func PublishAllocated(publisher Publisher) func(ctx context.Context, e domain.Allocated) error {
	return func(ctx context.Context, e domain.Allocated) error {
		return publisher.Publish(ctx, AllocatedChannel, e)
	}
}

// discard is the Publisher Bootstrap uses when none is given: Allocated events still have a
// handler, so "no handler is an error" holds, and go nowhere.
type discard struct{}

func (discard) Publish(context.Context, string, domain.Event) error { return nil }

// WithPublisher sets where Bootstrap's handlers publish Allocated events (default: nowhere).
func WithPublisher(p Publisher) Option { return func(t *Transactor) { t.publisher = p } }

// Bootstrap wires the whole stack: a unit of work over store that publishes committed events
// synchronously on a new bus, and on that bus a handler for every command and event of stockbus
// (see Register). Options configure the unit of work; WithBusOptions configures the bus and
// WithPublisher the publisher.
func Bootstrap(store Store, mailer Mailer, opts ...Option) *Transactor {
	uow := NewUnitOfWork(store, nil, opts...)
	uow.bus = NewBus(uow.busOptions...)
	publisher := uow.publisher
	if publisher == nil {
		publisher = discard{}
	}
	Register(uow, mailer, publisher)
	return uow
}

// publishAllocated is PublishAllocated, but for discard a handler that does not even box the
// event to hand it over.
func publishAllocated(publisher Publisher) func(ctx context.Context, e domain.Allocated) error {
	if _, none := publisher.(discard); none {
		return func(context.Context, domain.Allocated) error { return nil }
	}
	return PublishAllocated(publisher)
}

// Register subscribes the handlers of stockbus's messages on the unit of work's bus:
//   - the commands Allocate, CreateBatch and ChangeBatchQuantity, each run in a new unit of work;
//     out of stock is a result of Allocate, not an error, so the chain goes on;
//   - OutOfStock mails StockAddress "Out of stock for <SKU>" through mailer;
//   - Allocated is published on AllocatedChannel through publisher;
//   - Deallocated sends an Allocate command for the line, which joins the running queue.
func Register(uow *Transactor, mailer Mailer, publisher Publisher) {
	bus := uow.bus
	HandleCommand(bus, func(ctx context.Context, c domain.Allocate) error {
		_, err := allocate(ctx, uow, c)
		return err
	})
	HandleCommand(bus, func(ctx context.Context, c domain.CreateBatch) error { return createBatch(ctx, uow, c) })
	HandleCommand(bus, func(ctx context.Context, c domain.ChangeBatchQuantity) error {
		return changeBatchQuantity(ctx, uow, c)
	})
	Subscribe(bus, NotifyOutOfStock(mailer))
	Subscribe(bus, publishAllocated(publisher))
	Subscribe(bus, func(ctx context.Context, e domain.Deallocated) error {
		return bus.Handle(ctx, domain.Allocate{Meta: uow.newMeta(ctx), OrderID: e.OrderID, SKU: e.SKU, Qty: e.Qty})
	})
}
