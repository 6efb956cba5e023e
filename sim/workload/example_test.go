package workload_test

import (
	"fmt"
	"time"

	"github.com/stockbus/stockbus/sim/workload"
)

// The same Spec gives the same plan: the batches to start with, and streams of orders that
// replay on their own.
func ExampleNewPlan() {
	p, err := workload.NewPlan(workload.Spec{
		Seed: 42, SKUs: 2, BatchesPerSKU: 1, WarehouseShare: 1, ETASpread: time.Hour,
		BatchQty: workload.Range{Min: 10, Max: 10}, OrderQty: workload.Range{Min: 1, Max: 3}, Demand: -1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range p.Batches {
		fmt.Println("batch", b.Ref, b.Qty)
	}
	s := p.Stream(0)
	for range 3 {
		o := s.Next()
		fmt.Println("order", o.ID, o.SKU, o.Qty)
	}
	_, err = workload.NewPlan(workload.Spec{})
	fmt.Println(err)
	// Output:
	// batch THOSE-LAWYER-1 10
	// batch ENOUGH-GRANDFATHER-1 10
	// order o0-1 THOSE-LAWYER 3
	// order o0-2 ENOUGH-GRANDFATHER 3
	// order o0-3 THOSE-LAWYER 2
	// invalid workload spec: Seed: 0 would make gofakeit random
}
