package fakes_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
)

// BenchmarkLoadCommit loads a product, allocates one line, commits and rolls back, as a unit of
// work does (the rollback gives the transaction's working memory back to the store). The cost must
// not depend on how many lines the product already holds: copies share allocation sets.
func BenchmarkLoadCommit(b *testing.B) {
	for _, history := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			store := fakes.NewStore()
			batch := domain.NewBatch("b1", "HOT", domain.MaxQty, time.Time{})
			for i := range history {
				batch.Allocate(domain.OrderLine{OrderID: "old-" + strconv.Itoa(i), SKU: "HOT", Qty: 1})
			}
			tx, _ := store.Begin(ctx)
			_ = tx.Add(ctx, domain.NewProduct("HOT", []*domain.Batch{batch}))
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				tx, _ := store.Begin(ctx)
				p, err := tx.Get(ctx, "HOT")
				if err != nil {
					b.Fatal(err)
				}
				p.Batches[0].Allocate(domain.OrderLine{OrderID: "new-" + strconv.Itoa(i), SKU: "HOT", Qty: 1})
				if err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				tx.Rollback()
			}
		})
	}
}
