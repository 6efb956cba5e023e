package workload

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrSpec is wrapped by every error of Spec.Validate and NewPlan for a spec that cannot be planned.
var ErrSpec = errors.New("invalid workload spec")

// Range is an inclusive range of quantities.
type Range struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

func (r Range) mean() float64 { return float64(r.Min+r.Max) / 2 }

// Spec is what a plan is drawn from. The simulator's Config maps onto it (sim.NewPlan); its zero
// value is not a valid spec (a seed of 0 and no skus).
type Spec struct {
	// Seed seeds the plan and, derived from it, every stream. Never 0 (gofakeit v6 treats 0 as
	// "random").
	Seed           int64
	SKUs           int           // number of products, at least 1
	BatchesPerSKU  int           // batches of each product, at least 1
	WarehouseShare float64       // fraction of batches in the warehouse (no ETA), 0..1
	ETASpread      time.Duration // shipments arrive within this time of the plan's start, at least 1h unless every batch is in the warehouse
	BatchQty       Range         // batch sizes before scaling to Demand
	OrderQty       Range         // quantity of each order, Min at least 1
	// Demand is expected demand over supply: when positive, batch sizes are scaled so that the
	// stock of each sku is its expected share of DemandBasis orders divided by Demand. Negative:
	// keep BatchQty as drawn. Zero is refused.
	Demand float64
	// DemandBasis is the number of orders the stock is sized for (the run's orders, or rate ×
	// duration); used only when Demand is positive.
	DemandBasis float64
	// ZipfS is the exponent of a Zipf popularity of skus (> 1); 0 makes skus equally popular.
	ZipfS float64
	// BadInput is the share of orders sent with a Defect, 0..1, the defects taken in turn.
	BadInput float64
}

// Validate reports the first field of s a plan cannot be drawn from, as an error wrapping
// ErrSpec that names it.
func (s Spec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrSpec, field, fmt.Sprintf(format, args...))
	}
	share := func(v float64) bool { return v >= 0 && v <= 1 }
	switch {
	case s.Seed == 0:
		return bad("Seed", "0 would make gofakeit random")
	case s.SKUs < 1:
		return bad("SKUs", "want at least 1, got %d", s.SKUs)
	case s.BatchesPerSKU < 1:
		return bad("BatchesPerSKU", "want at least 1, got %d", s.BatchesPerSKU)
	case !share(s.WarehouseShare):
		return bad("WarehouseShare", "want 0..1, got %v", s.WarehouseShare)
	case s.ETASpread < time.Hour && s.WarehouseShare < 1:
		return bad("ETASpread", "want at least 1h, got %v", s.ETASpread)
	case s.BatchQty.Min < 0 || s.BatchQty.Min > s.BatchQty.Max:
		return bad("BatchQty", "want 0 <= min <= max, got %d..%d", s.BatchQty.Min, s.BatchQty.Max)
	case s.OrderQty.Min < 1 || s.OrderQty.Min > s.OrderQty.Max:
		return bad("OrderQty", "want 1 <= min <= max, got %d..%d", s.OrderQty.Min, s.OrderQty.Max)
	case s.Demand == 0 || math.IsNaN(s.Demand) || math.IsInf(s.Demand, 0):
		return bad("Demand", "want a finite ratio, positive (scale) or negative (keep), got %v", s.Demand)
	case s.Demand > 0 && s.BatchQty.Max == 0:
		return bad("BatchQty", "cannot scale empty batches to Demand; give a positive range")
	case s.Demand > 0 && !(s.DemandBasis >= 0 && s.DemandBasis <= 1e9):
		return bad("DemandBasis", "want 0..1e9 orders, got %v", s.DemandBasis)
	case s.ZipfS != 0 && !(s.ZipfS > 1) || math.IsInf(s.ZipfS, 0):
		return bad("ZipfS", "want 0 (uniform) or a finite exponent above 1, got %v", s.ZipfS)
	case !share(s.BadInput):
		return bad("BadInput", "want 0..1, got %v", s.BadInput)
	}
	return nil
}
