package sim_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

// The report's handler retries are the sends that repeated their actor's failed send of the
// same event, as the history shows them.
func TestHandlerRetriesAreTheHistorysRepeatedSends(t *testing.T) {
	cfg := sim.Default()
	cfg.Strategy, cfg.MailErrors, cfg.Orders, cfg.Workers, cfg.Mailer = sim.SyncRetry, 0.3, 400, 2, sim.FixedLatency(0)
	r, err := sim.Run(context.Background(), cfg)
	require.NoError(t, err)
	want := 0
	type key struct{ actor, event string }
	failed := map[key]bool{}
	for _, s := range r.History.Sends {
		k := key{s.Actor, s.Event}
		if failed[k] {
			want++
		}
		failed[k] = s.Err
	}
	require.Positive(t, want, "the run retried no send: nothing to count")
	assert.Equal(t, int64(want), r.Faults.HandlerRetries)
}

// An event commits inside the request of its order: between the order's start and its end, as
// the client saw them, and the commit histogram holds one commit per committing request at least.
func TestEventsCommitWithinTheirOrdersRequest(t *testing.T) {
	cfg := sim.Default()
	cfg.Orders, cfg.Workers, cfg.Mailer, cfg.Record = 600, 2, sim.FixedLatency(0), true
	r, err := sim.Run(context.Background(), cfg)
	require.NoError(t, err)
	orders := map[string]sim.OrderOp{}
	for _, o := range r.History.Orders {
		orders[o.ID] = o
	}
	checked := 0
	for _, e := range r.History.Events {
		o, ok := orders[e.Order]
		if e.State != sim.Committed || !ok {
			continue
		}
		checked++
		assert.GreaterOrEqual(t, e.CommittedAt, o.Start, "event %s of order %s committed before the order started", e.ID, o.ID)
		assert.LessOrEqual(t, e.CommittedAt, o.End, "event %s of order %s committed after the order ended", e.ID, o.ID)
	}
	require.Positive(t, checked, "no committed event of a recorded order")
}

// A worker's publication, untimed in a run with no broker report, takes its dispatch's end as its
// time: after its event's commit and within its order's request, like a timed one.
func TestAWorkersPublicationsHappenWithinTheirOrdersRequest(t *testing.T) {
	for _, strategy := range []string{sim.Sync, sim.SyncRetry} {
		t.Run(strategy, func(t *testing.T) {
			cfg := sim.Default()
			cfg.Strategy, cfg.Orders, cfg.Workers, cfg.Mailer, cfg.Record = strategy, 600, 2, sim.FixedLatency(0), true
			r, err := sim.Run(context.Background(), cfg)
			require.NoError(t, err)
			h := r.History
			orders, events := map[string]sim.OrderOp{}, map[string]sim.EventOp{}
			for _, o := range h.Orders {
				orders[o.ID] = o
			}
			for _, e := range h.Events {
				events[e.ID] = e
			}
			checked := 0
			for _, s := range h.Sends {
				e, ok := events[s.Event]
				if !s.Publish || !ok {
					continue
				}
				o := orders[e.Order]
				checked++
				assert.GreaterOrEqual(t, s.At, e.CommittedAt, "publication of %s (%s) before its commit", s.Event, o.ID)
				assert.LessOrEqual(t, s.At, o.End, "publication of %s after its order %s ended", s.Event, o.ID)
			}
			require.Positive(t, checked, "no publication of a worker's event")
		})
	}
}
