package hist

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TimelineSlots is the most intervals a run's timeline holds: when a run outlasts them, the
// intervals double in width (pairs merge), so the memory is bounded whatever the run's length.
const TimelineSlots = 120

// timelineFirstWidth is the width of an interval until the run outlasts TimelineSlots of them.
const timelineFirstWidth = int64(time.Millisecond)

// timelineSigFigs is the precision of an interval's histogram: 1 significant digit (within about
// 6%), about 4 KB each, against 3 digits and about 200 KB for the run's own latency histogram.
const timelineSigFigs = 1

// Interval is one stretch of a run's timeline: the orders that ended in it, whether in the
// warm-up or not, and their latency.
type Interval struct {
	Start      time.Duration `json:"start_ns"`   // since the run's start
	Width      time.Duration `json:"width_ns"`   // the last interval may be cut short by the run's end
	Orders     int64         `json:"orders"`     // orders that ended in the interval
	Throughput float64       `json:"throughput"` // orders/s
	P50        time.Duration `json:"p50_ns"`     // latency, to 1 significant digit
	P99        time.Duration `json:"p99_ns"`
	Max        time.Duration `json:"max_ns"`
}

// Timeline gathers the intervals of a run: orders and their latency per stretch of time, in at
// most TimelineSlots intervals. Goroutines record into their own Recorder and hand an interval
// over once it is behind them, so the lock is taken once per goroutine and interval. It is safe
// for concurrent use through its Recorders.
type Timeline struct {
	width atomic.Int64 // of an interval, ns: only grows, by doubling

	mu    sync.Mutex
	slots []timelineSlot
}

type timelineSlot struct {
	n int64
	h *hdrhistogram.Histogram
}

// NewTimeline returns an empty timeline whose intervals start 1 ms wide.
func NewTimeline() *Timeline {
	t := &Timeline{}
	t.width.Store(timelineFirstWidth)
	return t
}

func newIntervalHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, histMax, timelineSigFigs)
}

// add merges n orders that ended in the interval starting at start (ns) with latencies h.
func (t *Timeline) add(start, n int64, h *hdrhistogram.Histogram) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.width.Load()
	for start/w >= TimelineSlots {
		w *= 2
		merged := make([]timelineSlot, (len(t.slots)+1)/2)
		for i, s := range t.slots {
			m := &merged[i/2]
			m.n += s.n
			if s.h != nil {
				if m.h == nil {
					m.h = s.h
				} else {
					m.h.Merge(s.h)
				}
			}
		}
		t.slots = merged
		t.width.Store(w)
	}
	i := int(start / w)
	for len(t.slots) <= i {
		t.slots = append(t.slots, timelineSlot{})
	}
	s := &t.slots[i]
	s.n += n
	if s.h == nil {
		s.h = newIntervalHistogram()
	}
	s.h.Merge(h)
}

// Intervals returns the timeline up to end (since the run's start), the last interval cut short
// at end. Call it once every Recorder has flushed.
func (t *Timeline) Intervals(end time.Duration) []Interval {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := time.Duration(t.width.Load())
	out := make([]Interval, 0, len(t.slots))
	for i, s := range t.slots {
		iv := Interval{Start: time.Duration(i) * w, Width: w, Orders: s.n}
		if cut := end - iv.Start; cut > 0 && cut < w {
			iv.Width = cut
		}
		iv.Throughput = Rate(s.n, iv.Width)
		if s.h != nil && s.n > 0 {
			iv.P50 = time.Duration(s.h.ValueAtQuantile(50))
			iv.P99 = time.Duration(s.h.ValueAtQuantile(99))
			iv.Max = time.Duration(s.h.Max())
		}
		out = append(out, iv)
	}
	return out
}

// Recorder is one goroutine's current interval of a Timeline. It is not safe for concurrent use:
// each goroutine has its own.
type Recorder struct {
	t            *Timeline
	start, width int64
	n            int64
	h            *hdrhistogram.Histogram
}

// Recorder returns a new recorder into t, for one goroutine.
func (t *Timeline) Recorder() *Recorder { return &Recorder{t: t} }

// Record counts an order that ended at end (since the run's start) after latency.
func (l *Recorder) Record(end, latency time.Duration) {
	w := l.t.width.Load()
	start := int64(end) / w * w
	if l.n > 0 && (start != l.start || w != l.width) {
		l.Flush()
	}
	if l.h == nil {
		l.h = newIntervalHistogram()
	}
	l.start, l.width = start, w
	l.n++
	_ = l.h.RecordValue(min(max(int64(latency), 1), histMax))
}

// Flush hands the current interval to the timeline; Intervals sees only what was flushed.
func (l *Recorder) Flush() {
	if l.n == 0 {
		return
	}
	l.t.add(l.start, l.n, l.h)
	l.h.Reset()
	l.n = 0
}
