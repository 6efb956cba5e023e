package load_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim/load"
	"github.com/stockbus/stockbus/sim/workload"
)

// bySeq is a target whose outcome is the order's Seq modulo the outcomes, so that the counts of a
// run of n orders are known in advance.
func bySeq(ctx context.Context, o workload.Order) load.Outcome { return load.Outcome(o.Seq % 5) }

// wantBySeq is what bySeq answers to orders 1..n.
func wantBySeq(n int) load.Outcomes {
	var c load.Outcomes
	for s := 1; s <= n; s++ {
		c[s%5]++
	}
	return c
}

func TestRecorderCountsEveryOrderOnceUnderBothModels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		closed bool
		drive  func(run *load.Run, serve load.Server)
	}{
		{"closed, 3 workers, 2 warm-up orders", true, func(run *load.Run, serve load.Server) {
			load.Closed{Workers: 3, Orders: 101, WarmupOrders: 2}.Drive(run, &seq{}, serve)
		}},
		{"open, 2 workers, 2 warm-up orders", false, func(run *load.Run, serve load.Server) {
			load.Open{Workers: 2, Backlog: 101, Orders: 101, Rate: 1e6, WarmupOrders: 2}.Drive(context.Background(), run, &seq{}, serve, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := clock()
			workers := 3
			rec := load.NewRecorder(context.Background(), run, workers, tc.closed, bySeq)
			tc.drive(run, rec.Serve)
			tally := rec.Tally()
			assert.Equal(t, wantBySeq(101), tally.Outcomes, "outcomes of orders 1..101")
			assert.EqualValues(t, 101, tally.Outcomes.Total())
			assert.Equal(t, tally.Measured.Total(), tally.Latency.Count(), "one latency per measured order")
			assert.Equal(t, tally.Measured.Total(), tally.Service.Count())
			assert.LessOrEqual(t, tally.Measured.Total(), int64(99), "the 2 warm-up orders are not measured")
			if !tc.closed {
				assert.EqualValues(t, 99, tally.Measured.Total(), "open: every arrival after the warm-up")
			}
			for o := range load.Outcome(5) {
				assert.LessOrEqual(t, tally.Measured.Get(o), tally.Outcomes.Get(o), "outcome %v", o)
			}
		})
	}
}

// manual is a run clock that moves only when told to.
type manual struct{ now atomic.Int64 }

func (m *manual) run() *load.Run {
	run := &load.Run{Now: func() time.Duration { return time.Duration(m.now.Load()) }, Stopped: func() bool { return false }}
	run.Window.Reset()
	return run
}

func TestRecorderCountsLatencyFromTheIntendedStart(t *testing.T) {
	var clk manual
	run := clk.run()
	// Every order takes 5ns of the target's time.
	target := func(ctx context.Context, o workload.Order) load.Outcome {
		clk.now.Add(5)
		return load.Allocated
	}
	rec := load.NewRecorder(context.Background(), run, 1, false, target)
	// Due at 0, 10, 20; picked up at 100 (late: a backlog), then each as the last returns.
	clk.now.Store(100)
	for i := range 3 {
		rec.Serve(0, load.Arrival{Order: workload.Order{Seq: i + 1}, Due: time.Duration(10 * i), Measured: true}, run.Now())
	}
	tally := rec.Tally()
	// Ends at 105, 110, 115: latencies 105, 100, 95 from the due times; service 5 each.
	assert.Equal(t, 95*time.Nanosecond, tally.Latency.Min())
	assert.Equal(t, 105*time.Nanosecond, tally.Latency.Max())
	assert.Equal(t, 300*time.Nanosecond, tally.Latency.Sum())
	assert.Equal(t, 15*time.Nanosecond, tally.Service.Sum())
	assert.Equal(t, 115*time.Nanosecond, tally.LastEnd)
}

func TestRecorderClosedMeasuresTheWindowOnly(t *testing.T) {
	var clk manual
	run := clk.run()
	target := func(ctx context.Context, o workload.Order) load.Outcome {
		clk.now.Add(10)
		return load.OutOfStock
	}
	rec := load.NewRecorder(context.Background(), run, 1, true, target)
	serve := func(due time.Duration) { rec.Serve(0, load.Arrival{Due: due}, due) }
	clk.now.Store(0)
	serve(0) // before the window opened: not measured
	run.Window.Start.Store(10)
	clk.now.Store(10)
	serve(10) // ends at 20: measured
	run.Window.End.Store(25)
	clk.now.Store(20)
	serve(20) // ends at 30, after the window closed: not measured
	tally := rec.Tally()
	require.EqualValues(t, 3, tally.Outcomes.Get(load.OutOfStock))
	assert.EqualValues(t, 1, tally.Measured.Get(load.OutOfStock))
	assert.Equal(t, 10*time.Nanosecond, tally.Latency.Max())
}

func TestOutcomeNames(t *testing.T) {
	for _, tc := range []struct {
		o    load.Outcome
		want string
	}{
		{load.Unknown, "unknown"}, {load.Allocated, "allocated"}, {load.OutOfStock, "out-of-stock"},
		{load.Invalid, "invalid"}, {load.Failed, "failed"}, {load.Outcome(9), "Outcome(9)"},
	} {
		t.Run(tc.want, func(t *testing.T) { assert.Equal(t, tc.want, tc.o.String()) })
	}
	assert.Zero(t, load.Outcomes{}.Get(load.Outcome(9)))
}
