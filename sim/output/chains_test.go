package output_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stockbus/stockbus/sim"
)

// TestTheComparisonShowsEachStrategysChains: with chains the comparison has their rows, one
// cell per strategy ("-" for a run without them), and the message types handled; without, none.
func TestTheComparisonShowsEachStrategysChains(t *testing.T) {
	with := sim.Report{Config: sim.Default(), Chains: &sim.Chains{QuantityChanges: 7, Reallocations: 5, DepthMax: 3, DepthP99: 3,
		DepthMean: 1.5, Messages: map[string]int64{"Deallocated": 5, "Allocate": 5}}}
	with.Config.Strategy = sim.Async
	without := sim.Report{Config: sim.Default()}
	out := comparison(t, []sim.Report{without, with})
	for _, row := range []string{"quantity changes / reallocations", "chain depth max / p99 / mean", "Deallocated handled", "Allocate handled"} {
		assert.Contains(t, out, row)
	}
	assert.Regexp(t, `quantity changes / reallocations\s+-\s+7 / 5`, out)
	assert.Regexp(t, `chain depth max / p99 / mean\s+-\s+3 / 3 / 1.50`, out)
	assert.NotContains(t, out, "OutOfStock handled", "a type no run handled")

	assert.NotContains(t, comparison(t, []sim.Report{without, without}), "reallocations")
}
