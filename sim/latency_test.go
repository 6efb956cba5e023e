package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

// The open model counts latency from each order's intended start (no coordinated omission). With
// one worker, a mailer that takes L per send, orders due every 1/rate faster than it can serve
// them and a backlog that drops nothing, the k-th order cannot end before the worker slept
// through the sends of the first k orders (a sleep never ends early), and it was due at
// (k-1)/rate: its latency is at least sends(first k)·L - (k-1)/rate, for every k. Counted from
// the moment a worker picked it up instead, it would be about one send's L.
func TestOpenModelLatencyCountsFromTheIntendedStart(t *testing.T) {
	const mailer = 2 * time.Millisecond
	cfg := sim.HotSKU()
	cfg.Model, cfg.Rate, cfg.Workers = sim.Open, 2000, 1
	cfg.Orders, cfg.WarmupOrders, cfg.Backlog = 100, 0, 100
	cfg.BatchQty = sim.Range{Min: 10, Max: 10} // 10 allocated, 90 out of stock: 90 mails
	cfg.Mailer, cfg.Record = sim.FixedLatency(mailer), true
	r := run(t, cfg)
	requireOK(t, r)
	h := r.History
	require.Len(t, h.Orders, 100, "nothing dropped")

	orderOf := map[string]string{}
	for _, e := range h.Events {
		orderOf[e.ID] = e.Order
	}
	sends := map[string]int{}
	for _, s := range h.Sends {
		if !s.Publish {
			sends[orderOf[s.Event]]++
		}
	}
	byDue := map[int]sim.OrderOp{}
	var sum, longest time.Duration
	for _, o := range h.Orders {
		k := int(o.Start*time.Duration(cfg.Rate)/time.Second+time.Nanosecond/2) + 1 // due at (k-1)/rate
		byDue[k] = o
		if o.Measured {
			sum, longest = sum+o.Latency, max(longest, o.Latency)
		}
	}
	require.Len(t, byDue, 100, "one order due at each (k-1)/rate")
	mailed := 0
	for k := 1; k <= 100; k++ {
		o := byDue[k]
		mailed += sends[o.ID]
		bound := time.Duration(mailed)*mailer - time.Duration(float64(k-1)/cfg.Rate*float64(time.Second))
		assert.GreaterOrEqual(t, o.Latency, bound, "order %d (%s): latency %v, but %d sends of %v were due before it ended", k, o.ID, o.Latency, mailed, mailer)
		assert.Equal(t, o.End-o.Start, o.Latency, "order %d: latency from its due time", k)
		assert.True(t, o.Measured, "order %d measured (no warm-up)", k)
	}
	require.Equal(t, 90, mailed, "a mail for each order out of stock")
	assert.Equal(t, int64(100), r.Latency.Count, "the report's latency counted every order")
	assert.Equal(t, longest, r.Latency.Max, "the report's latency is what the history recorded")
	assert.InDelta(t, sum/100, r.Latency.Mean, 1, "the mean too")
}
