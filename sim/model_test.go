package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

// t0 is the mean latency of the calibration's measured orders, the warm-up left out.
func TestModelT0IsTheMeanOfTheMeasuredOrders(t *testing.T) {
	h := &sim.History{Orders: []sim.OrderOp{
		{ID: "o0-1", Latency: 900 * time.Microsecond},                   // warm-up
		{ID: "o0-2", Latency: 10 * time.Microsecond, Measured: true},    //
		{ID: "o0-3", Latency: 20 * time.Microsecond, Measured: true},    //
		{ID: "o0-4", Latency: 60 * time.Microsecond, Measured: true},    //
		{ID: "o0-5", Latency: 5000 * time.Microsecond, Measured: false}, // warm-up again (an open run's early arrival)
	}}
	n, t0 := sim.ModelT0(h)
	assert.Equal(t, int64(3), n)
	assert.Equal(t, 30*time.Microsecond, t0)

	n, t0 = sim.ModelT0(&sim.History{})
	assert.Zero(t, n)
	assert.Zero(t, t0, "nothing measured, no t0")
}

// A slowdown the calibration did not see (every commit of the judged run sleeps 5ms, none of the
// calibration's) puts throughput far below N/(t0 + r·L), and -require model fails the run. The
// margin is wide: t0 would have to exceed a few milliseconds for the ratio to reach 0.9.
func TestRequireModelFailsARunSlowerThanItsCalibration(t *testing.T) {
	cfg := sim.HotSKU()
	cfg.Strategy, cfg.Workers, cfg.Orders, cfg.WarmupOrders = sim.Sync, 4, 400, 40
	cfg.Mailer, cfg.CommitDelay = sim.FixedLatency(time.Millisecond), 5*time.Millisecond
	cfg.Require.Model = true
	r := run(t, cfg)
	require.NotNil(t, r.Model)
	assert.Equal(t, int64(360), r.Model.Calibration.Orders, "the calibration measured its own 400 orders less a warm-up of 40")
	assert.Equal(t, r.Model.Calibration.T0, r.Model.T0, "the model's t0 is the calibration's")
	assert.False(t, r.Model.Within10, "ratio %.3f", r.Model.Ratio)
	assert.False(t, r.OK)
	inv := r.Invariants[len(r.Invariants)-1]
	assert.Equal(t, sim.InvModel, inv.Name)
	assert.Equal(t, 1, inv.Violations, "the model check is the broken invariant: %+v", r.Invariants)
	for _, other := range r.Invariants[:len(r.Invariants)-1] {
		assert.True(t, other.OK, "%s", other.Name)
	}

	cfg.Require.Model = false
	r = run(t, cfg)
	assert.True(t, r.OK, "without -require model the same run passes: the model check only informs")
	assert.Equal(t, "not required", r.Invariants[len(r.Invariants)-1].Note)
}

func TestRequireModelIsABadFlagWithoutAModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*sim.Config)
	}{
		{"open model", func(c *sim.Config) { c.Model = sim.Open }},
		{"async", func(c *sim.Config) { c.Strategy = sim.Async }},
		{"outbox", func(c *sim.Config) { c.Strategy = sim.Outbox }},
		{"sync-retry", func(c *sim.Config) { c.Strategy = sim.SyncRetry }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sim.Default()
			cfg.Require.Model = true
			tc.edit(&cfg)
			err := cfg.Validate()
			require.ErrorIs(t, err, sim.ErrConfig)
			assert.ErrorContains(t, err, "-require: model: only a closed sync run has a model check")
		})
	}
}
