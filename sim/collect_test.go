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
