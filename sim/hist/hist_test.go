package hist_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim/hist"
)

func TestHistogramQuantilesAreZeroToHundred(t *testing.T) {
	h := hist.New()
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
	one, a, b := hist.New(), hist.New(), hist.New()
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
	h := hist.New()
	assert.Equal(t, hist.Dist{}, h.Dist(), "empty")
	assert.Zero(t, h.Mean())
	h.Record(-time.Second)
	h.Record(2 * time.Hour)
	d := h.Dist()
	assert.Equal(t, time.Duration(0), d.Min, "negative counts as zero")
	assert.Equal(t, 2*time.Hour, d.Max, "max is exact beyond the histogram's range")
	assert.InEpsilon(t, float64(time.Minute), float64(d.P99), 0.001, "quantiles clamp at 1 min")
}

func TestRate(t *testing.T) {
	assert.Equal(t, 2000.0, hist.Rate(1000, 500*time.Millisecond))
	assert.Zero(t, hist.Rate(1000, 0))
	assert.Zero(t, hist.Rate(1000, -time.Second))
}

func TestHistogramMinMaxAreExact(t *testing.T) {
	h := hist.New()
	assert.Zero(t, h.Min(), "empty")
	assert.Zero(t, h.Max(), "empty")
	for _, d := range []time.Duration{7 * time.Millisecond, 1234567 * time.Nanosecond, 3 * time.Hour} {
		h.Record(d)
	}
	assert.Equal(t, 1234567*time.Nanosecond, h.Min(), "to the nanosecond, not 3 digits")
	assert.Equal(t, 3*time.Hour, h.Max())
}

func TestSpectrumEndsAtTheMaximum(t *testing.T) {
	assert.Nil(t, hist.New().Spectrum(), "empty")
	h := hist.New()
	for v := 1; v <= 100_000; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	h.Record(time.Hour)
	s := h.Spectrum()
	require.Len(t, s, 22, "four points a decade up to 99.999%, then the maximum")
	assert.Equal(t, hist.Percentile{Percentile: 0, Value: time.Microsecond}, s[0])
	assert.Equal(t, hist.Percentile{Percentile: 100, Value: time.Hour}, s[len(s)-1], "the exact maximum")
	for i := 1; i < len(s); i++ {
		assert.Greater(t, s[i].Percentile, s[i-1].Percentile, "point %d", i)
		assert.GreaterOrEqual(t, s[i].Value, s[i-1].Value, "point %d", i)
	}
	assert.Equal(t, 99.0, s[8].Percentile)
	assert.Equal(t, h.Quantile(99), s[8].Value)
}

// One recorder per goroutine, each order in the interval of its end: the intervals count every
// order once, and the last one is cut short at the run's end.
func TestTimelineCountsEachOrderInTheIntervalItEnded(t *testing.T) {
	tl := hist.NewTimeline()
	var wg sync.WaitGroup
	for g := range 4 {
		r := tl.Recorder()
		wg.Go(func() {
			for k := range 10 { // ends at g·0.1ms + k·0.5ms: two orders per goroutine and ms
				r.Record(time.Duration(g)*100*time.Microsecond+time.Duration(k)*500*time.Microsecond, time.Duration(g+1)*time.Millisecond)
			}
			r.Flush()
		})
	}
	wg.Wait()
	iv := tl.Intervals(4500 * time.Microsecond)
	require.Len(t, iv, 5)
	for i, v := range iv {
		assert.Equal(t, time.Duration(i)*time.Millisecond, v.Start, "interval %d", i)
		assert.Equal(t, int64(8), v.Orders, "interval %d: 4 goroutines × 2 orders", i)
		assert.InEpsilon(t, float64(4*time.Millisecond), float64(v.Max), 0.07, "interval %d: the slowest goroutine's latency, to 1 significant digit", i)
	}
	assert.Equal(t, time.Millisecond, iv[0].Width)
	assert.Equal(t, 500*time.Microsecond, iv[4].Width, "cut short at the end")
	assert.Equal(t, 16000.0, iv[4].Throughput, "8 orders in 0.5ms")
}

// A run that outlasts TimelineSlots intervals doubles their width: pairs merge, nothing is lost,
// and the timeline never holds more than TimelineSlots.
func TestTimelineDoublesItsIntervalsToStayBounded(t *testing.T) {
	tl := hist.NewTimeline()
	r := tl.Recorder()
	const orders = 1000
	for k := range orders { // one order every 0.3ms: 300ms, 300 intervals of 1ms
		r.Record(time.Duration(k)*300*time.Microsecond, time.Millisecond)
	}
	r.Flush()
	iv := tl.Intervals(300 * time.Millisecond)
	require.LessOrEqual(t, len(iv), hist.TimelineSlots)
	assert.Greater(t, len(iv), hist.TimelineSlots/4)
	total := int64(0)
	for i, v := range iv {
		total += v.Orders
		assert.Equal(t, 4*time.Millisecond, v.Width, "interval %d: 1ms doubled twice", i)
		assert.Equal(t, time.Duration(i)*4*time.Millisecond, v.Start, "interval %d", i)
	}
	assert.Equal(t, int64(orders), total, "every order counted once")
}

// Orders a recorder has not flushed are not in the timeline yet.
func TestTimelineSeesOnlyFlushedIntervals(t *testing.T) {
	tl := hist.NewTimeline()
	r := tl.Recorder()
	r.Record(100*time.Microsecond, time.Millisecond)
	assert.Empty(t, tl.Intervals(time.Millisecond), "nothing flushed")
	r.Record(1500*time.Microsecond, time.Millisecond) // the next interval: the first is handed over
	iv := tl.Intervals(2 * time.Millisecond)
	require.Len(t, iv, 1)
	assert.Equal(t, int64(1), iv[0].Orders)
	r.Flush()
	r.Flush()
	iv = tl.Intervals(2 * time.Millisecond)
	require.Len(t, iv, 2)
	assert.Equal(t, int64(1), iv[1].Orders, "a second Flush adds nothing")
}
