package domain_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stockbus/stockbus/domain"
)

// benchProduct returns a product with one warehouse batch big enough for any benchmark, holding
// history allocations of qty 1.
func benchProduct(b *testing.B, history int) *domain.Product {
	b.Helper()
	batch := domain.NewBatch("bench-batch", "BENCH-SKU", domain.MaxQty, time.Time{})
	p := domain.NewProduct("BENCH-SKU", []*domain.Batch{batch})
	for i := range history {
		if _, err := p.Allocate(domain.OrderLine{OrderID: "hist-" + strconv.Itoa(i), SKU: "BENCH-SKU", Qty: 1}); err != nil {
			b.Fatalf("Allocate history line %d: %v", i, err)
		}
	}
	return p
}

// BenchmarkProductAllocate measures what a unit of work does per allocation: clone the stored
// product, then allocate one new line to the clone. The cost must not grow with the allocations
// the product already holds (the persistent line set makes both steps O(log n) or better).
func BenchmarkProductAllocate(b *testing.B) {
	for _, bc := range []struct {
		name    string
		history int
	}{
		{name: "fresh", history: 10},
		{name: "history=100000", history: 100_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			base := benchProduct(b, bc.history)
			// Build order ids up front so that formatting them is not measured. Ids cycle: every
			// iteration starts again from base, so reusing an id is still a new line for it.
			ids := make([]string, 1<<16)
			for i := range ids {
				ids[i] = "order-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := base.Clone()
				if _, err := p.Allocate(domain.OrderLine{OrderID: ids[i&(len(ids)-1)], SKU: "BENCH-SKU", Qty: 1}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkProductAllocateBatches allocates new orders to a product of one batch and of three
// (the simulator's), each batch holding 100,000 lines: the difference is what looking a new order
// up in every batch's index costs, the most that an index from order to batch in the product could
// save. Orders go to the first batch (equal ETAs keep their order). Order ids are made up front
// for 1<<20 iterations; run it with -benchtime 500000x or fewer.
func BenchmarkProductAllocateBatches(b *testing.B) {
	ids := make([]string, 1<<20)
	for i := range ids {
		ids[i] = "order-" + strconv.Itoa(i)
	}
	for _, batches := range []int{1, 3} {
		b.Run("batches="+strconv.Itoa(batches), func(b *testing.B) {
			var bs []*domain.Batch
			for i := range batches {
				bt := domain.NewBatch("b"+strconv.Itoa(i), "BENCH-SKU", domain.MaxQty, time.Time{})
				for j := range 100_000 {
					bt.Allocate(domain.OrderLine{OrderID: "hist-" + strconv.Itoa(j), SKU: "BENCH-SKU", Qty: 1})
				}
				bs = append(bs, bt)
			}
			p := domain.NewProduct("BENCH-SKU", bs)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(ids) {
					b.Fatal("out of order ids: use a smaller -benchtime")
				}
				if _, err := p.Allocate(domain.OrderLine{OrderID: ids[i], SKU: "BENCH-SKU", Qty: 1}); err != nil {
					b.Fatal(err)
				}
				p.Events = p.Events[:0]
				i++
			}
		})
	}
}
