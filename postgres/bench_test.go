package postgres_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/service"
)

// BenchmarkAllocate is service.Allocate end to end on the store, as service.BenchmarkAllocate is on
// the fakes: load the product, allocate, commit (one product row, one batch row, one line row),
// publish the Allocated event to no handler. History is how many lines the product holds at the
// start; a real store reads them all on every load, so unlike the fakes' the cost grows with it.
func BenchmarkAllocate(b *testing.B) {
	for _, history := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			store := open(b)
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

// BenchmarkRelay is outboxtest.BenchmarkRelay on the store: a relay's claims and marks, per row.
func BenchmarkRelay(b *testing.B) {
	outboxtest.BenchmarkRelay(b, func(b *testing.B) (service.Store, outbox.Store) {
		s := open(b)
		s.EnableOutbox()
		return s, s
	})
}
