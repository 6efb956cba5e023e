package sim_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

func TestQuantityChangesMakeChainsAndKeepInvariants(t *testing.T) {
	cfg := sim.Default()
	cfg.Strategy = sim.Sync
	cfg.Orders, cfg.WarmupOrders = 600, 50
	cfg.Mailer = sim.FixedLatency(0)
	cfg.QuantityChanges = 0.05
	cfg.Record = true
	rep, err := sim.Run(context.Background(), cfg)
	require.NoError(t, err)
	require.NotNil(t, rep.Chains)
	assert.Positive(t, rep.Chains.QuantityChanges)
	assert.Positive(t, rep.Chains.Messages["Deallocated"], "quantity changes must deallocate lines")
	assert.Equal(t, rep.Chains.Messages["Deallocated"], rep.Chains.Reallocations)
	assert.GreaterOrEqual(t, rep.Chains.DepthMax, int64(3), "Deallocated -> Allocate -> Allocated/OutOfStock")
	assert.GreaterOrEqual(t, rep.Chains.DepthP99, int64(1))
	for _, inv := range rep.Invariants {
		assert.True(t, inv.OK, "%s: %v", inv.Name, inv.Examples)
	}
	assert.True(t, rep.OK)
	// every OutOfStock has exactly one mail under sync
	assert.EqualValues(t, rep.Accounting.Kind(sim.KindOutOfStock).Committed, rep.Counts.Mails)
	assert.Zero(t, rep.Accounting.Lost)
	assert.Zero(t, rep.Accounting.Duplicated)
}

func TestQuantityChangesOffLeavesReportUnchanged(t *testing.T) {
	cfg := sim.Default()
	cfg.Strategy, cfg.Orders, cfg.WarmupOrders, cfg.Mailer = sim.Sync, 200, 10, sim.FixedLatency(0)
	rep, err := sim.Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Nil(t, rep.Chains)
	assert.NotContains(t, rep.Command, "quantity-changes")
}

func TestQuantityChangesValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*sim.Config)
	}{
		{"negative", func(c *sim.Config) { c.QuantityChanges = -0.1 }},
		{"above one", func(c *sim.Config) { c.QuantityChanges = 1.01 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sim.Default()
			tc.set(&cfg)
			err := cfg.Validate()
			var ce *sim.ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			assert.Equal(t, "quantity-changes", ce.Field)
			assert.ErrorIs(t, err, sim.ErrConfig)
		})
	}
	for _, tc := range []struct {
		name string
		set  func(*sim.Config)
	}{
		{"one", func(c *sim.Config) { c.QuantityChanges = 1 }},
		{"async", func(c *sim.Config) { c.QuantityChanges, c.Strategy = 0.1, sim.Async }},
		{"outbox", func(c *sim.Config) { c.QuantityChanges, c.Strategy = 0.1, sim.Outbox }},
		{"crashes", func(c *sim.Config) { c.QuantityChanges, c.Crash.AfterCommit = 0.1, 0.01 }},
	} {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			cfg := sim.Default()
			tc.set(&cfg)
			assert.NoError(t, cfg.Validate())
		})
	}
}
