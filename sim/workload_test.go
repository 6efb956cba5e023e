package sim_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

func TestParsers(t *testing.T) {
	r, err := sim.ParseRange("2..5")
	require.NoError(t, err)
	assert.Equal(t, sim.Range{Min: 2, Max: 5}, r)
	r, err = sim.ParseRange("7")
	require.NoError(t, err)
	assert.Equal(t, sim.Range{Min: 7, Max: 7}, r)
	_, err = sim.ParseRange("a..b")
	assert.Error(t, err)

	for in, want := range map[string]sim.Latency{
		"0":                 {Dist: "fixed"},
		"5ms":               {Dist: "fixed", Mean: 5 * time.Millisecond},
		"fixed:2ms":         {Dist: "fixed", Mean: 2 * time.Millisecond},
		"exp:3ms":           {Dist: "exp", Mean: 3 * time.Millisecond},
		"uniform:1ms..9ms":  {Dist: "uniform", Min: time.Millisecond, Max: 9 * time.Millisecond, Mean: 5 * time.Millisecond},
		"uniform:0s..200µs": {Dist: "uniform", Max: 200 * time.Microsecond, Mean: 100 * time.Microsecond},
	} {
		got, err := sim.ParseLatency(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"fast", "gauss:1ms", "uniform:1ms", "exp:x"} {
		_, err := sim.ParseLatency(in)
		assert.Error(t, err, in)
	}

	n, d, err := sim.ParseWarmup("300")
	require.NoError(t, err)
	assert.Equal(t, 300, n)
	assert.Zero(t, d)
	n, d, err = sim.ParseWarmup("50ms")
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, 50*time.Millisecond, d)
	_, _, err = sim.ParseWarmup("soon")
	assert.Error(t, err)
}

// A run sized by -orders cannot have more workers than orders: the error names both flags.
func TestMoreWorkersThanOrdersNamesBothFlags(t *testing.T) {
	cfg := sim.Default()
	cfg.Orders, cfg.WarmupOrders, cfg.Workers = 300, 0, 301
	err := cfg.Validate()
	require.ErrorIs(t, err, sim.ErrConfig)
	assert.Equal(t, "-workers: 301 workers for -orders 300: a run sized by -orders needs -workers at most -orders", err.Error())
	cfg.Workers = 300
	assert.NoError(t, cfg.Validate(), "as many workers as orders")
	cfg.Workers, cfg.Duration = sim.MaxWorkers, time.Second
	assert.NoError(t, cfg.Validate(), "a run by -duration may have more workers than -orders, up to MaxWorkers")
}

func TestValidateNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*sim.Config)
	}{
		{"seed", func(c *sim.Config) { c.Seed = 0 }},
		{"skus", func(c *sim.Config) { c.SKUs = 0 }},
		{"batches", func(c *sim.Config) { c.BatchesPerSKU = -1 }},
		{"warehouse", func(c *sim.Config) { c.WarehouseShare = 1.5 }},
		{"batch-qty", func(c *sim.Config) { c.BatchQty = sim.Range{Min: 5, Max: 1} }},
		{"order-qty", func(c *sim.Config) { c.OrderQty = sim.Range{Min: 0, Max: 1} }},
		{"demand", func(c *sim.Config) { c.Demand = 0 }},
		{"demand", func(c *sim.Config) { c.Demand = math.NaN() }},
		{"popularity", func(c *sim.Config) { c.Popularity = "pareto" }},
		{"zipf-s", func(c *sim.Config) { c.ZipfS = 1 }},
		{"orders", func(c *sim.Config) { c.Orders = -1 }},
		{"orders", func(c *sim.Config) { c.Orders, c.Duration = 0, 0 }},
		{"duration", func(c *sim.Config) { c.Duration = -time.Second }},
		{"warmup", func(c *sim.Config) { c.WarmupOrders = c.Orders }},
		{"warmup", func(c *sim.Config) { c.Duration, c.Warmup = time.Second, time.Second }},
		{"model", func(c *sim.Config) { c.Model = "half-open" }},
		{"workers", func(c *sim.Config) { c.Workers = 0 }},
		{"rate", func(c *sim.Config) { c.Model, c.Rate = sim.Open, 0 }},
		{"arrivals", func(c *sim.Config) { c.Model, c.Arrivals = sim.Open, "bursty" }},
		{"backlog", func(c *sim.Config) { c.Model, c.Backlog = sim.Open, -1 }},
		{"mailer-latency", func(c *sim.Config) { c.Mailer = sim.FixedLatency(-time.Millisecond) }},
		{"strategy", func(c *sim.Config) { c.Strategy = "carrier-pigeon" }},
		{"handlers", func(c *sim.Config) { c.Handlers = 0 }},
		{"queue", func(c *sim.Config) { c.Queue = 0 }},
		{"when-full", func(c *sim.Config) { c.WhenFull = "panic" }},
		{"retries", func(c *sim.Config) { c.Retries = -2 }},
		{"handler-attempts", func(c *sim.Config) { c.HandlerAttempts = 0 }},
		{"handler-backoff", func(c *sim.Config) { c.HandlerBackoff = -time.Millisecond }},
		{"crash", func(c *sim.Config) { c.Crash.RelaySent = 1.5 }},
		{"crash", func(c *sim.Config) { c.Crash.BeforeCommit = math.NaN() }},
		{"conflict-rate", func(c *sim.Config) { c.ConflictRate = -0.1 }},
		{"conflict-rate", func(c *sim.Config) { c.ConflictRate, c.Retries = 1, -1 }},
		{"mail-errors", func(c *sim.Config) { c.MailErrors = 2 }},
		{"mail-timeout", func(c *sim.Config) { c.MailTimeout = -time.Millisecond }},
		{"timeout-delivered", func(c *sim.Config) { c.TimeoutDelivered = 1.1 }},
		{"client-retry", func(c *sim.Config) { c.ClientRetry = -1 }},
		{"bad-input", func(c *sim.Config) { c.BadInput = 1.01 }},
		{"rendezvous", func(c *sim.Config) { c.Rendezvous = -1 }},
		{"rendezvous", func(c *sim.Config) { c.Rendezvous = 5 }},
		{"rendezvous", func(c *sim.Config) { c.Rendezvous, c.Crash.AfterCommit = 2, 0.1 }},
		{"rendezvous", func(c *sim.Config) { c.Rendezvous, c.BadInput = 2, 0.1 }},
		{"rendezvous", func(c *sim.Config) { c.Rendezvous, c.Orders, c.WarmupOrders, c.Workers = 2, 1, 0, 1 }},
		{"workers", func(c *sim.Config) { c.Workers = c.Orders + 1 }},
		{"workers", func(c *sim.Config) { c.Workers, c.Duration = sim.MaxWorkers+1, time.Second }},
		{"crash-at", func(c *sim.Config) { c.CrashAt = sim.CrashVisits{sim.RelaySent: {0}} }},
		{"crash-at", func(c *sim.Config) { c.CrashAt, c.Crash.AfterCommit = sim.CrashVisits{sim.AfterCommit: {1}}, 0.1 }},
		{"hold-faults", func(c *sim.Config) { c.HoldFaults = -1 }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			cfg := sim.Default()
			tc.edit(&cfg)
			err := cfg.Validate()
			require.ErrorIs(t, err, sim.ErrConfig)
			var ce *sim.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field, "error %q", err)
			assert.Contains(t, err.Error(), "-"+tc.field+": ")
		})
	}
	assert.NoError(t, sim.Default().Validate())
	assert.NoError(t, sim.HotSKU().Validate())
}

func TestHotSKUIsTheFiguresWorkload(t *testing.T) {
	plan, err := sim.NewPlan(sim.HotSKU())
	require.NoError(t, err)
	require.Len(t, plan.Batches, 1)
	assert.Equal(t, 500, plan.Batches[0].Qty)
	assert.True(t, plan.Batches[0].ETA.IsZero(), "in the warehouse")
	s := plan.Stream(0)
	for range 1000 {
		o := s.Next()
		assert.Equal(t, plan.SKUs[0], o.SKU)
		assert.Equal(t, 1, o.Qty)
		assert.Equal(t, sim.NoDefect, o.Bad)
	}
	assert.Equal(t, 1000, sim.HotSKU().Orders)
	assert.Equal(t, sim.HotSKU(), sim.Workloads["hot-sku"]())
}

// The promise a run is required to keep (-require) is on the command line that reruns it.
func TestRequireIsOnTheRerunCommand(t *testing.T) {
	for _, s := range []string{"no-duplicate-mail", "no-duplicate-publish", "no-duplicate", "no-loss,no-duplicate-mail,delivered"} {
		p, err := sim.ParsePromise(s)
		require.NoError(t, err, s)
		cfg := sim.Default()
		cfg.Require = p
		assert.Contains(t, cfg.Command(), "-require "+s, "the command line gives %s back", s)
	}
}
