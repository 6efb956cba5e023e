package simcli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// feed gives e a sample every 250ms of the run's clock, at rate orders/s, from the clock at and
// done orders on, for d; it returns the clock and done orders at the end.
func feed(e *eta, at time.Duration, done int64, rate float64, d time.Duration) (time.Duration, int64) {
	start, base := at, done
	for t := time.Duration(0); t <= d; t += 250 * time.Millisecond {
		at, done = start+t, base+int64(rate*t.Seconds())
		e.add(at, done)
	}
	return at, done
}

func TestETAFollowsTheRecentRate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		phases   [][2]float64 // orders/s, seconds
		total    int64
		wantRate float64
		wantLeft time.Duration // 0: no ETA
		wantText string
	}{
		{"steady", [][2]float64{{100, 4}}, 1000, 100, 6 * time.Second, "100 orders/s, ETA 6s"},
		{"slowed long ago: the old rate is forgotten", [][2]float64{{1000, 10}, {100, 8}}, 20_000, 100, 92 * time.Second, "100 orders/s, ETA 1m32s"},
		{"slowing now: no ETA", [][2]float64{{1000, 3}, {10, 2}}, 20_000, 0, 0, "ETA ? (rate changing)"},
		{"under a second: no rate", [][2]float64{{100, 0.5}}, 1000, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e eta
			var at time.Duration
			var done int64
			for i, ph := range tc.phases {
				if i > 0 {
					at += 250 * time.Millisecond
				}
				at, done = feed(&e, at, done, ph[0], time.Duration(ph[1]*float64(time.Second)))
			}
			r, ok := e.rate()
			if tc.wantRate > 0 {
				assert.True(t, ok)
				assert.InDelta(t, tc.wantRate, r, tc.wantRate*0.02)
			}
			left, ok := e.left(tc.total)
			assert.Equal(t, tc.wantLeft > 0, ok, "ETA shown")
			assert.InDelta(t, tc.wantLeft.Seconds(), left.Seconds(), 1)
			if tc.wantText == "" {
				assert.Empty(t, e.describe(tc.total))
			} else {
				assert.Contains(t, e.describe(tc.total), tc.wantText)
			}
		})
	}
}
