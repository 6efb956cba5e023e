package simcli

import (
	"fmt"
	"time"
)

// etaWindow is how far back the rate is taken: long enough to smooth a tick, short enough that a
// run which slows down (stock runs out and every order starts mailing) shows it within seconds.
const etaWindow = 5 * time.Second

// etaSteady is how far the rate of the window's later half may stray from its earlier half's
// (a factor) for the ETA to be shown; beyond it the rate is changing and any ETA would mislead.
const etaSteady = 1.5

type etaSample struct {
	at   time.Duration
	done int64
}

// eta estimates the time left from the recent rate of progress. The clock is the run's own
// (sim.Progress.Elapsed), so a test drives it. It is not safe for concurrent use.
type eta struct {
	samples []etaSample // oldest first, covering at most etaWindow
}

// add records that done orders had finished at at.
func (e *eta) add(at time.Duration, done int64) {
	e.samples = append(e.samples, etaSample{at, done})
	i := 0
	for i < len(e.samples)-1 && at-e.samples[i+1].at >= etaWindow {
		i++
	}
	e.samples = e.samples[i:]
}

// rate is orders per second over the samples between a and b.
func rate(a, b etaSample) float64 {
	if b.at <= a.at {
		return 0
	}
	return float64(b.done-a.done) / (b.at - a.at).Seconds()
}

// rate returns the recent rate in orders/s, false until two samples a second apart came.
func (e *eta) rate() (float64, bool) {
	if len(e.samples) < 2 {
		return 0, false
	}
	first, last := e.samples[0], e.samples[len(e.samples)-1]
	if last.at-first.at < time.Second {
		return 0, false
	}
	return rate(first, last), true
}

// left returns the time until total orders are done at the recent rate, false while there is no
// rate yet, the rate is 0, or it changes fast (the window's halves differ by more than etaSteady).
func (e *eta) left(total int64) (time.Duration, bool) {
	r, ok := e.rate()
	if !ok || r <= 0 {
		return 0, false
	}
	first, last := e.samples[0], e.samples[len(e.samples)-1]
	mid := e.samples[0]
	for _, s := range e.samples {
		if s.at-first.at <= (last.at-first.at)/2 {
			mid = s
		}
	}
	early, late := rate(first, mid), rate(mid, last)
	if early <= 0 || late <= 0 || late/early > etaSteady || early/late > etaSteady {
		return 0, false
	}
	remaining := max(total-last.done, 0)
	return time.Duration(float64(remaining) / r * float64(time.Second)).Round(time.Second), true
}

// describe is the progress line's text after the run's name: the rate, and the ETA when steady.
func (e *eta) describe(total int64) string {
	r, ok := e.rate()
	if !ok {
		return ""
	}
	s := fmt.Sprintf("%.0f orders/s", r)
	if left, ok := e.left(total); ok {
		return s + ", ETA " + left.String()
	}
	return s + ", ETA ? (rate changing)"
}

// describeRate is the rate alone, for a run by duration, whose end is known.
func (e *eta) describeRate() string {
	if r, ok := e.rate(); ok {
		return fmt.Sprintf("%.0f orders/s", r)
	}
	return "? orders/s"
}
