package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

func TestHistogramQuantilesAreZeroToHundred(t *testing.T) {
	h := sim.NewHistogram()
	for v := 1; v <= 1000; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	d := h.Dist()
	assert.Equal(t, int64(1000), d.Count)
	assert.Equal(t, time.Microsecond, d.Min)
	assert.Equal(t, time.Millisecond, d.Max)
	assert.Equal(t, 500500*time.Nanosecond, d.Mean, "the mean is exact, not the histogram's estimate")
	for _, tc := range []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"p50", d.P50, 500 * time.Microsecond},
		{"p90", d.P90, 900 * time.Microsecond},
		{"p99", d.P99, 990 * time.Microsecond},
		{"p99.9", d.P999, 999 * time.Microsecond},
	} {
		assert.InEpsilon(t, float64(tc.want), float64(tc.got), 0.001, "%s: got %v, want %v (3 significant digits)", tc.name, tc.got, tc.want)
	}
	assert.Equal(t, d.P99, h.Quantile(99), "Quantile takes a percentile, 0..100")
	assert.Equal(t, d.Min, h.Quantile(0))
}

func TestHistogramMergeIsTheSameAsOne(t *testing.T) {
	one, a, b := sim.NewHistogram(), sim.NewHistogram(), sim.NewHistogram()
	for v := range 2000 {
		d := time.Duration(v*v) * time.Nanosecond
		one.Record(d)
		if v%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(b)
	assert.Equal(t, one.Dist(), a.Dist())
	assert.Equal(t, one.Sum(), a.Sum())
}

func TestHistogramEdges(t *testing.T) {
	h := sim.NewHistogram()
	assert.Equal(t, sim.Dist{}, h.Dist(), "empty")
	assert.Zero(t, h.Mean())
	h.Record(-time.Second)
	h.Record(2 * time.Hour)
	d := h.Dist()
	assert.Equal(t, time.Duration(0), d.Min, "negative counts as zero")
	assert.Equal(t, 2*time.Hour, d.Max, "max is exact beyond the histogram's range")
	assert.InEpsilon(t, float64(time.Minute), float64(d.P99), 0.001, "quantiles clamp at 1 min")
}

func TestRate(t *testing.T) {
	assert.Equal(t, 2000.0, sim.Rate(1000, 500*time.Millisecond))
	assert.Zero(t, sim.Rate(1000, 0))
	assert.Zero(t, sim.Rate(1000, -time.Second))
}

func TestModelArithmetic(t *testing.T) {
	// 4 workers, 10µs outside dispatch, a fifth of requests mail, 5ms each: 4 / 1.01ms.
	m := sim.NewModel(4, 10*time.Microsecond, 0.2, 5*time.Millisecond, 3900, 0.99)
	assert.InDelta(t, 3960.396, m.Predicted, 0.001)
	assert.InDelta(t, 3900/3960.396, m.Ratio, 1e-6)
	assert.True(t, m.Within10)
	assert.Equal(t, "within 10%", m.Note)

	slow := sim.NewModel(4, 10*time.Microsecond, 0.2, 5*time.Millisecond, 2000, 0.5)
	assert.False(t, slow.Within10)
	assert.Contains(t, slow.Note, "50%", "a miss explained by idle workers names their busy share")

	over := sim.NewModel(4, 10*time.Microsecond, 0.2, 5*time.Millisecond, 2000, 0.99)
	assert.False(t, over.Within10)
	assert.Contains(t, over.Note, "dispatch cost more")

	noMail := sim.NewModel(2, 4*time.Microsecond, 0, 5*time.Millisecond, 500_000, 1)
	assert.InDelta(t, 500_000, noMail.Predicted, 1e-6, "r = 0: N / t0")
	assert.True(t, noMail.Within10)

	nothing := sim.NewModel(2, 0, 0, 0, 0, 0)
	assert.Zero(t, nothing.Predicted)
	assert.False(t, nothing.Within10)
}

func TestLittleArithmetic(t *testing.T) {
	l := sim.NewLittle(4000, time.Millisecond, 3.9, 4)
	assert.InDelta(t, 4.0, l.Product, 1e-9, "4000/s × 1ms = 4 in the system")
	assert.InDelta(t, 4.0/3.9, l.Ratio, 1e-9)
	assert.Equal(t, 4, l.Workers)
	require.Zero(t, sim.NewLittle(4000, time.Millisecond, 0, 4).Ratio, "no samples, no ratio")
}
