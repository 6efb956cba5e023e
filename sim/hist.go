package sim

import "github.com/stockbus/stockbus/sim/hist"

// The recording types, as the simulator has always named them; see package hist.
type (
	// Histogram records durations: see hist.Histogram.
	Histogram = hist.Histogram
	// Dist summarizes a distribution of durations: see hist.Dist.
	Dist = hist.Dist
	// Percentile is one point of a latency distribution's percentile spectrum: see hist.Percentile.
	Percentile = hist.Percentile
	// Interval is one stretch of a run's timeline: see hist.Interval.
	Interval = hist.Interval

	// timeline and timelineLocal keep run.go's names for the run's timeline and a worker's
	// recorder into it.
	timeline      = hist.Timeline
	timelineLocal = hist.Recorder
)

// TimelineSlots is the most intervals a run's timeline holds: see hist.TimelineSlots.
const TimelineSlots = hist.TimelineSlots

// NewHistogram returns an empty histogram (hist.New).
func NewHistogram() *Histogram { return hist.New() }

func newTimeline() *timeline { return hist.NewTimeline() }
