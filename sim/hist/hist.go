// Package hist records what a simulator run measures without a lock on the hot path: each
// goroutine records durations into its own Histogram (an HdrHistogram plus exact count, sum, min
// and max) and its own Timeline Recorder, and they are merged at the end. Dist and Percentile are
// the summaries a report carries, Interval one stretch of the timeline. It knows nothing of
// orders, strategies or the stack.
package hist

import (
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// histMax is the largest duration a Histogram tells apart; longer ones are recorded as histMax.
const histMax = int64(time.Minute)

// Histogram records durations: an HdrHistogram (1 ns to 1 min, 3 significant digits) for the
// quantiles, plus the exact count, sum, min and max, so means are not approximated. Its memory is
// fixed (about 200 KB) whatever it records. It is not safe for concurrent use: each goroutine
// records into its own, and they are merged at the end.
type Histogram struct {
	h        *hdrhistogram.Histogram
	n        int64
	sum      int64
	min, max int64
}

// New returns an empty histogram.
func New() *Histogram {
	return &Histogram{h: hdrhistogram.New(1, histMax, 3), min: math.MaxInt64}
}

// Record adds one duration. Negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.n++
	h.sum += v
	h.min = min(h.min, v)
	h.max = max(h.max, v)
	_ = h.h.RecordValue(min(v, histMax))
}

// Merge adds everything o recorded.
func (h *Histogram) Merge(o *Histogram) {
	h.h.Merge(o.h)
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is how many durations were recorded.
func (h *Histogram) Count() int64 { return h.n }

// Sum is the exact sum of the recorded durations.
func (h *Histogram) Sum() time.Duration { return time.Duration(h.sum) }

// Min is the exact smallest duration recorded, or 0 when empty.
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max is the exact largest duration recorded (beyond the quantiles' 1 min too), or 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact mean, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the value at q, where q is a percentile from 0 to 100 (HdrHistogram's
// convention, not 0..1): Quantile(99) is p99. It is exact to 3 significant digits.
func (h *Histogram) Quantile(q float64) time.Duration {
	return time.Duration(h.h.ValueAtQuantile(q))
}

// Dist summarizes a distribution of durations. Quantiles are HdrHistogram's (3 significant
// digits); Mean, Min and Max are exact. All durations are in nanoseconds in JSON.
type Dist struct {
	Count int64         `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	Min   time.Duration `json:"min_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Dist summarizes what h recorded. An empty histogram gives the zero Dist.
func (h *Histogram) Dist() Dist {
	if h.n == 0 {
		return Dist{}
	}
	return Dist{
		Count: h.n,
		Mean:  h.Mean(),
		Min:   time.Duration(h.min),
		P50:   h.Quantile(50),
		P90:   h.Quantile(90),
		P99:   h.Quantile(99),
		P999:  h.Quantile(99.9),
		Max:   time.Duration(h.max),
	}
}

// Percentile is one point of a latency distribution's percentile spectrum.
type Percentile struct {
	Percentile float64       `json:"percentile"` // 0 to 100
	Value      time.Duration `json:"value_ns"`
}

// spectrumPoints are the percentiles of a spectrum: evenly spaced on HdrHistogram's plotting
// axis, 1/(1-q), four to a decade, up to 99.999%, then the maximum.
var spectrumPoints = func() []float64 {
	var ps []float64
	for k := 0; k <= 20; k++ {
		ps = append(ps, 100*(1-math.Pow(10, -float64(k)/4)))
	}
	return append(ps, 100)
}()

// Spectrum returns the percentile spectrum of what h recorded (nil when empty), as
// HdrHistogram's percentile plot draws it: the value at each percentile, more points towards the
// tail.
func (h *Histogram) Spectrum() []Percentile {
	if h.n == 0 {
		return nil
	}
	out := make([]Percentile, 0, len(spectrumPoints))
	for _, p := range spectrumPoints {
		v := h.Quantile(p)
		if p == 100 {
			v = time.Duration(h.max)
		}
		out = append(out, Percentile{Percentile: math.Round(p*1e4) / 1e4, Value: v})
	}
	return out
}

// Rate is n per second over d, or 0 when d is not positive.
func Rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
