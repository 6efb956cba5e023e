package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// handlerKind is what a scenario's handler does with an event.
type handlerKind int

const (
	working    handlerKind = iota // returns nil
	failing                       // returns an error
	panicking                     // panics
	raising                       // handles the notes listed for the note it got (Note only)
	allocating                    // allocates an order on one note (Note only)
	witnessing                    // notes which orders the store holds for the event's sku (OutOfStock only)
)

// handlerSpec is a handler a Given step asked for; the stack subscribes it when it is built.
type handlerSpec struct {
	name   string
	event  string // a key of eventTypes
	kind   handlerKind
	raises map[string][]string // raising: note name -> notes to handle next
	on     string              // allocating: the note that triggers it
	line   domain.OrderLine    // allocating: what it allocates
}

func (h handlerSpec) subscribe(w *world, bus *service.Bus, uow *service.Transactor) {
	run := func(ctx context.Context, e domain.Event) error {
		switch h.kind {
		case failing:
			return fmt.Errorf("handler %s failed on %s", h.name, describe(e))
		case panicking:
			panic(fmt.Sprintf("handler %s panicked on %s", h.name, describe(e)))
		case raising:
			for _, next := range h.raises[e.(Note).Name] {
				if err := bus.Handle(ctx, w.note(next)); err != nil {
					return err
				}
			}
		case allocating:
			if e.(Note).Name != h.on {
				return nil
			}
			_, err := service.Allocate(ctx, uow, h.line.OrderID, h.line.SKU, h.line.Qty)
			if errors.Is(err, domain.ErrOutOfStock) && !errors.Is(err, service.ErrPublish) {
				return nil // running out is news for the OutOfStock handlers, not a failure of this one
			}
			return err
		case witnessing:
			w.journal.witness(h.name, w.held(e.(domain.OutOfStock).SKU))
		}
		return nil
	}
	switch h.event {
	case "OutOfStock":
		service.Subscribe(bus, func(ctx context.Context, e domain.OutOfStock) error { return run(ctx, e) })
	case "Allocated":
		service.Subscribe(bus, func(ctx context.Context, e domain.Allocated) error { return run(ctx, e) })
	case "Deallocated":
		service.Subscribe(bus, func(ctx context.Context, e domain.Deallocated) error { return run(ctx, e) })
	case "Note":
		service.Subscribe(bus, func(ctx context.Context, n Note) error { return run(ctx, n) })
	default:
		panic("steps: no event type " + h.event)
	}
}

func addHandler(ctx context.Context, h handlerSpec) error {
	w := from(ctx)
	for _, other := range w.handlers {
		if other.name == h.name {
			return fmt.Errorf("there is a handler %q already", h.name)
		}
	}
	if _, ok := eventTypes[h.event]; !ok {
		return fmt.Errorf("no event type %q", h.event)
	}
	w.handlers = append(w.handlers, h)
	w.reconfigure()
	return nil
}
