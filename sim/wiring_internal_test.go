package sim

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// busRoutes builds the stack a run of cfg builds, without running it, and returns its bus's
// routes.
func busRoutes(t *testing.T, cfg Config) []string {
	t.Helper()
	require.NoError(t, cfg.Validate())
	r, err := newRun(cfg, nil)
	require.NoError(t, err)
	require.NoError(t, r.setup(context.Background()))
	for _, closer := range []func() error{r.closeStore, r.closeMailer, r.broker.close} {
		if closer != nil {
			assert.NoError(t, closer())
		}
	}
	return r.bus.Routes()
}

// TestTheSimulatorsBusHasExactlyRegistersRoutes: whatever the run records (chains, crashes, the
// strategy's middleware), the bus it measures has the handlers service.Register wires, no more
// and no fewer.
func TestTheSimulatorsBusHasExactlyRegistersRoutes(t *testing.T) {
	want := service.Bootstrap(fakes.NewStore(), fakes.NewMailer()).Bus().Routes()
	require.NotEmpty(t, want)
	for _, tc := range []struct {
		name string
		set  func(*Config)
	}{
		{"default", func(*Config) {}},
		{"sync-retry", func(c *Config) { c.Strategy = SyncRetry }},
		{"async with chains", func(c *Config) { c.Strategy, c.QuantityChanges = Async, 0.1 }},
		{"outbox with chains and crashes", func(c *Config) {
			c.Strategy, c.QuantityChanges, c.Crash.AfterCommit = Outbox, 0.1, 0.01
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.set(&cfg)
			assert.Equal(t, want, busRoutes(t, cfg))
		})
	}
}
