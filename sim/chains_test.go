package sim_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// chainsConfig is the configuration of `simulate -strategy <s> -quantity-changes 0.02
// -mailer-latency 1ms` (and `-crash after-commit=0.02` when crash): what `-compare
// sync,sync-retry,async,outbox` runs once per strategy. Record keeps the orders, so that the
// store's check compares every line with what its client saw.
func chainsConfig(strategy string, crash bool) sim.Config {
	cfg := sim.Default()
	cfg.Strategy, cfg.QuantityChanges, cfg.Mailer, cfg.Record = strategy, 0.02, sim.FixedLatency(time.Millisecond), true
	if crash {
		cfg.Crash.AfterCommit = 0.02
	}
	return cfg
}

// requireChains checks what every run with chains must show: quantity changes that deallocated
// lines, and every invariant held under the strategy's promise; and, when the run's Deallocated
// events reach their handler (handled: not async under crashes, whose queue each crash loses),
// reallocations whose chains reach Deallocated -> Allocate -> Allocated/OutOfStock, with the
// messages counted by type.
func requireChains(t *testing.T, rep sim.Report, handled bool) {
	t.Helper()
	for _, inv := range rep.Invariants {
		assert.True(t, inv.OK, "%s: %s broken: %v", rep.Config.Strategy, inv.Name, inv.Examples)
	}
	require.NotNil(t, rep.Chains, "the report's chains")
	ch := rep.Chains
	assert.Positive(t, ch.QuantityChanges, "quantity changes")
	assert.Positive(t, rep.Accounting.Kind(sim.KindDeallocated).Committed, "Deallocated committed")
	if !handled {
		return
	}
	assert.Positive(t, ch.Messages["Deallocated"], "Deallocated handled")
	assert.Positive(t, ch.Messages["Allocate"], "Allocate commands handled")
	assert.Positive(t, ch.Reallocations, "reallocations")
	assert.GreaterOrEqual(t, ch.DepthMax, int64(3), "Deallocated -> Allocate -> Allocated/OutOfStock")
}

// offWorker returns the events of the history that a unit of work off the workers raised, and
// checks each names its actor and takes its ID from that actor's stream, after the workers'.
func offWorker(t *testing.T, h *sim.History, workers int) []sim.EventOp {
	t.Helper()
	var out []sim.EventOp
	streams := map[string]string{} // stream prefix -> actor
	for _, e := range h.Events {
		if e.Worker >= 0 {
			assert.Empty(t, e.Actor, "event %s of worker %d names an actor", e.ID, e.Worker)
			continue
		}
		require.NotEmpty(t, e.Actor, "event %s raised off the workers names no actor", e.ID)
		stream, _, ok := strings.Cut(strings.TrimPrefix(e.ID, "e"), "-")
		require.True(t, ok, "event ID %s", e.ID)
		n, err := strconv.Atoi(stream)
		require.NoError(t, err, "event ID %s", e.ID)
		assert.GreaterOrEqual(t, n, workers, "event %s of %s: stream below the workers'", e.ID, e.Actor)
		if a, seen := streams[stream]; seen {
			assert.Equal(t, a, e.Actor, "stream %s of two actors", stream)
		}
		streams[stream] = e.Actor
		out = append(out, e)
	}
	return out
}

// TestChainsUnderEveryStrategy is `simulate -compare sync,sync-retry,async,outbox
// -quantity-changes 0.02 -mailer-latency 1ms`: every strategy runs the chains and every invariant
// holds; nothing fails, so nothing is lost and each handled Deallocated sent one reallocation.
// Under async and outbox the Deallocated events are handled off the workers, and so are their
// reallocations, whose events come from the handlers' and relays' own ID streams.
func TestChainsUnderEveryStrategy(t *testing.T) {
	for _, strategy := range []string{sim.Sync, sim.SyncRetry, sim.Async, sim.Outbox} {
		t.Run(strategy, func(t *testing.T) {
			cfg := chainsConfig(strategy, false)
			rep, err := sim.Run(context.Background(), cfg)
			require.NoError(t, err)
			requireChains(t, rep, true)
			assert.True(t, rep.OK, "the report's verdict")
			assert.Zero(t, rep.Accounting.Lost, "events lost")
			assert.Equal(t, rep.Chains.Messages["Deallocated"], rep.Chains.Reallocations, "one reallocation per Deallocated handled")
			dealloc := rep.Accounting.Kind(sim.KindDeallocated)
			assert.Equal(t, dealloc.Committed, dealloc.Delivered, "Deallocated events that reached their handler")
			off := offWorker(t, rep.History, cfg.Workers)
			if strategy == sim.Async || strategy == sim.Outbox {
				kinds := map[sim.EventKind]int{}
				for _, e := range off {
					if e.State == sim.Committed {
						kinds[e.Kind]++
					}
				}
				assert.Positive(t, kinds[sim.KindAllocated]+kinds[sim.KindOutOfStock], "reallocations committed off the workers: %v", kinds)
			} else {
				assert.Empty(t, off, "a sync strategy reallocates on the worker")
			}
		})
	}
}

// TestChainsUnderEveryStrategyWithCrashes is the same with `-crash after-commit=0.02`: each
// strategy keeps its promise. The outbox (at least once) loses nothing, Deallocated events
// included, which relays deliver again after a crash; the others lose events in crashes, and an
// order whose Deallocated was lost is held nowhere without breaking the store's check.
func TestChainsUnderEveryStrategyWithCrashes(t *testing.T) {
	for _, strategy := range []string{sim.Sync, sim.SyncRetry, sim.Async, sim.Outbox} {
		t.Run(strategy, func(t *testing.T) {
			cfg := chainsConfig(strategy, true)
			rep, err := sim.Run(context.Background(), cfg)
			require.NoError(t, err)
			requireChains(t, rep, strategy != sim.Async)
			assert.True(t, rep.OK, "the report's verdict")
			assert.Positive(t, rep.Faults.Crashes.Total, "crashes")
			offWorker(t, rep.History, cfg.Workers)
			if strategy == sim.Outbox {
				assert.Zero(t, rep.Accounting.Lost, "events lost under at-least-once")
				dealloc := rep.Accounting.Kind(sim.KindDeallocated)
				assert.Equal(t, dealloc.Committed, dealloc.Delivered, "Deallocated events that reached their handler")
			} else {
				assert.Positive(t, rep.Accounting.LostInCrash, "events lost in crashes")
			}
			// Nothing else fails, so every event lost was held by the process when it crashed,
			// reallocations' events that joined a running bus call among them.
			assert.Equal(t, rep.Accounting.Lost, rep.Accounting.LostInCrash, "events lost, and of them in a crash")
		})
	}
}

// firstRelayCommit crashes the process right after the first commit of a relay's unit of work
// (a reallocation), once.
type firstRelayCommit struct{ done atomic.Bool }

func (f *firstRelayCommit) Crash(p sim.Point, actor string) bool {
	return p == sim.AfterCommit && strings.HasPrefix(actor, "r") && f.done.CompareAndSwap(false, true)
}

// TestARelaysReallocationIsAStepOfItsProcess: a relay's unit of work commits as a step of the
// process, where a crash can hit it as it hits a worker's, and the outbox still loses nothing:
// the reallocation's events were stored with its commit, and the Deallocated whose relay died is
// sent again. HoldFaults keeps the plan on while the outbox drains, which is when relays run
// most reallocations.
func TestARelaysReallocationIsAStepOfItsProcess(t *testing.T) {
	cfg := chainsConfig(sim.Outbox, false)
	cfg.Orders, cfg.WarmupOrders = 1000, 50
	plan := &firstRelayCommit{}
	cfg.Faults, cfg.HoldFaults = plan, 1<<30
	rep, err := sim.Run(context.Background(), cfg)
	require.NoError(t, err)
	requireChains(t, rep, true)
	require.True(t, plan.done.Load(), "no relay committed a reallocation")
	require.Len(t, rep.History.Crashes, 1)
	c := rep.History.Crashes[0]
	assert.Equal(t, sim.AfterCommit, c.Point)
	assert.Equal(t, "r0", c.Actor)
	assert.NotEmpty(t, c.Carried, "the events the relay's commit carried")
	assert.Zero(t, rep.Accounting.Lost, "events lost under at-least-once")
	dealloc := rep.Accounting.Kind(sim.KindDeallocated)
	assert.Equal(t, dealloc.Committed, dealloc.Delivered, "Deallocated events that reached their handler")
}
