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

// Bootstrap wires the book's chapter 8 stack: a bus on which OutOfStock mails StockAddress through
// mailer, and a unit of work over store that publishes on it synchronously. Options configure the
// unit of work; WithBusOptions configures the bus.
func Bootstrap(store Store, mailer Mailer, opts ...Option) *Transactor {
	var cfg Transactor
	for _, o := range opts {
		o(&cfg)
	}
	bus := NewBus(cfg.busOptions...)
	Subscribe(bus, NotifyOutOfStock(mailer))
	return NewUnitOfWork(store, bus, opts...)
}
