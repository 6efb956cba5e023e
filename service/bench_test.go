package service_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

var sink int

func noop(_ context.Context, e domain.OutOfStock) error { sink += e.Qty; return nil }

// BenchmarkHandle measures one event through the bus to one no-op handler; BenchmarkDirectCall is
// the same handler called directly, so the ratio of the two is the bus's overhead. The event
// already carries an ID, as the events a unit of work hands the bus do.
func BenchmarkHandle(b *testing.B) {
	bus := service.NewBus()
	service.Subscribe(bus, noop)
	ctx := context.Background()
	var e domain.Event = domain.OutOfStock{Meta: domain.Meta{ID: "ev-1"}, SKU: "LAMP", Qty: 1}
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Handle(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleUnstamped is BenchmarkHandle with an event that carries no ID, as a message sent
// straight to the bus does: the bus gives it one (a new ID string and a new event value).
func BenchmarkHandleUnstamped(b *testing.B) {
	bus := service.NewBus()
	service.Subscribe(bus, noop)
	ctx := context.Background()
	var e domain.Event = domain.OutOfStock{SKU: "LAMP", Qty: 1}
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Handle(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleChain is a chain of two: the handler of an Allocated hands the bus an OutOfStock
// on its ctx, which joins the call's queue and is handled next. Neither carries an ID, so the bus
// stamps both, the OutOfStock caused by the Allocated.
func BenchmarkHandleChain(b *testing.B) {
	bus := service.NewBus()
	var oos domain.Message = domain.OutOfStock{SKU: "LAMP", Qty: 1}
	service.Subscribe(bus, func(ctx context.Context, e domain.Allocated) error { return bus.Handle(ctx, oos) })
	service.Subscribe(bus, noop)
	ctx := context.Background()
	var e domain.Event = domain.Allocated{SKU: "LAMP", OrderID: "o1", Qty: 1, BatchRef: "b1"}
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Handle(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDirectCall(b *testing.B) {
	ctx := context.Background()
	var e domain.Event = domain.OutOfStock{SKU: "LAMP", Qty: 1}
	h := noop
	b.ReportAllocs()
	for b.Loop() {
		if err := h(ctx, e.(domain.OutOfStock)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocate is service.Allocate end to end on the fakes: validate, load a copy, allocate,
// commit, publish nothing. History is how many lines the product already holds; the cost must not
// grow with it, because the fake store shares allocation sets between copies.
func BenchmarkAllocate(b *testing.B) {
	for _, history := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			store := fakes.NewStore()
			batch := domain.NewBatch("batch", "HOT", domain.MaxQty, time.Time{})
			for i := range history {
				batch.Allocate(domain.OrderLine{OrderID: "old-" + strconv.Itoa(i), SKU: "HOT", Qty: 1})
			}
			tx, _ := store.Begin(ctx)
			if err := tx.Add(ctx, domain.NewProduct("HOT", []*domain.Batch{batch})); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			uow := service.Bootstrap(store, fakes.NewMailer())
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := service.Allocate(ctx, uow, "order-"+strconv.Itoa(i), "HOT", 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
