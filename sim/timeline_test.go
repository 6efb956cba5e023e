package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

func TestTimelineCoversTheRunWithBoundedIntervals(t *testing.T) {
	cfg := tiny()
	cfg.Strategy, cfg.Duration, cfg.Mailer = sim.Sync, 1500*time.Millisecond, sim.FixedLatency(time.Millisecond)
	r := run(t, cfg)
	require.NotEmpty(t, r.Timeline)
	assert.LessOrEqual(t, len(r.Timeline), sim.TimelineSlots)
	assert.Greater(t, len(r.Timeline), sim.TimelineSlots/4, "coarsened by doubling, at least half the slots are in use")
	var orders int64
	w := r.Timeline[0].Width
	for i, iv := range r.Timeline {
		orders += iv.Orders
		assert.Equal(t, time.Duration(i)*w, iv.Start, "interval %d", i)
		if iv.Orders > 0 {
			assert.Positive(t, iv.P99, "interval %d", i)
			assert.LessOrEqual(t, iv.P50, iv.P99)
		}
	}
	assert.Equal(t, r.Counts.Sent, orders, "every order that reached the service ends in one interval")
	require.NotEmpty(t, r.Percentiles)
	assert.Equal(t, 100.0, r.Percentiles[len(r.Percentiles)-1].Percentile)
	assert.Equal(t, r.Latency.Max, r.Percentiles[len(r.Percentiles)-1].Value)
	assert.Equal(t, 90.0, r.Percentiles[4].Percentile, "four points to a decade of 1/(1-q)")
	assert.Equal(t, r.Latency.P90, r.Percentiles[4].Value)
	assert.Equal(t, r.Latency.P99, r.Percentiles[8].Value)
}
