package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/workload"
)

// NewPlan draws the plan of the Config's workload fields and nothing else: each row spells out
// the workload.Spec a Config maps to, and the two plans must be the same order for order.
func TestNewPlanDrawsTheConfigsWorkload(t *testing.T) {
	month := 30 * 24 * time.Hour
	defaultSpec := workload.Spec{
		Seed: 42, SKUs: 10, BatchesPerSKU: 3, WarehouseShare: 0.5, ETASpread: month,
		BatchQty: workload.Range{Min: 50, Max: 500}, OrderQty: workload.Range{Min: 1, Max: 10},
		Demand: 1.25, DemandBasis: 4000, ZipfS: 1.2,
	}
	for _, tc := range []struct {
		name string
		cfg  func() sim.Config
		spec func() workload.Spec
	}{
		{"default", sim.Default, func() workload.Spec { return defaultSpec }},
		{"hot-sku: uniform popularity has no exponent", sim.HotSKU, func() workload.Spec {
			return workload.Spec{Seed: 42, SKUs: 1, BatchesPerSKU: 1, WarehouseShare: 1, ETASpread: month,
				BatchQty: workload.Range{Min: 500, Max: 500}, OrderQty: workload.Range{Min: 1, Max: 1}, Demand: -1, DemandBasis: 1000}
		}},
		{"an open run by duration sizes stock for rate × duration", func() sim.Config {
			c := sim.Default()
			c.Model, c.Rate, c.Orders, c.WarmupOrders, c.Duration = sim.Open, 500, 0, 0, 3*time.Second
			return c
		}, func() workload.Spec { s := defaultSpec; s.DemandBasis = 1500; return s }},
		{"bad input and another seed", func() sim.Config {
			c := sim.Default()
			c.BadInput, c.Seed = 0.2, 7
			return c
		}, func() workload.Spec { s := defaultSpec; s.BadInput, s.Seed = 0.2, 7; return s }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg()
			assert.Equal(t, tc.spec(), sim.WorkloadSpec(cfg))
			got, err := sim.NewPlan(cfg)
			require.NoError(t, err)
			want, err := workload.NewPlan(tc.spec())
			require.NoError(t, err)
			assert.Equal(t, want.Batches, got.Batches)
			assert.Equal(t, want.Digest(2, 300), got.Digest(2, 300), "the same orders")
		})
	}
}

// A Config the simulator refuses gives its *ConfigError, naming the flag, and no plan.
func TestNewPlanRefusesAnInvalidConfig(t *testing.T) {
	cfg := sim.Default()
	cfg.Popularity = "pareto"
	p, err := sim.NewPlan(cfg)
	require.ErrorIs(t, err, sim.ErrConfig)
	assert.Nil(t, p)
	assert.Contains(t, err.Error(), "-popularity: ")
}
