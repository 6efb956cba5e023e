package sim

import "github.com/stockbus/stockbus/sim/workload"

// The workload's types, as the simulator has always named them; see package workload.
type (
	// Plan is a seeded workload: see workload.Plan.
	Plan = workload.Plan
	// Stream generates a plan's orders: see workload.Stream.
	Stream = workload.Stream
	// Order is one order of the workload: see workload.Order.
	Order = workload.Order
	// BatchSpec is a batch the plan adds to the store before the first order: see workload.BatchSpec.
	BatchSpec = workload.BatchSpec
	// Defect is what is wrong with an invalid order: see workload.Defect.
	Defect = workload.Defect
)

// Defects of invalid orders, taken in turn: see workload.Defect.
const (
	NoDefect     = workload.NoDefect
	ZeroQty      = workload.ZeroQty
	NegativeQty  = workload.NegativeQty
	HugeQty      = workload.HugeQty
	EmptyOrderID = workload.EmptyOrderID
	EmptySKU     = workload.EmptySKU
	UnknownSKU   = workload.UnknownSKU
)

// UnknownSKUName is the sku an UnknownSKU order names.
const UnknownSKUName = workload.UnknownSKUName

// NewPlan builds the plan of cfg, which must be valid (an invalid one gives its *ConfigError).
func NewPlan(cfg Config) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return workload.NewPlan(WorkloadSpec(cfg))
}

// WorkloadSpec is the part of cfg the plan is drawn from.
func WorkloadSpec(cfg Config) workload.Spec {
	s := workload.Spec{
		Seed:           cfg.Seed,
		SKUs:           cfg.SKUs,
		BatchesPerSKU:  cfg.BatchesPerSKU,
		WarehouseShare: cfg.WarehouseShare,
		ETASpread:      cfg.ETASpread,
		BatchQty:       workload.Range(cfg.BatchQty),
		OrderQty:       workload.Range(cfg.OrderQty),
		Demand:         cfg.Demand,
		DemandBasis:    cfg.demandBasis(),
		BadInput:       cfg.BadInput,
	}
	if cfg.Popularity == Zipf {
		s.ZipfS = cfg.ZipfS
	}
	return s
}
