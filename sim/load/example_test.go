package load_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stockbus/stockbus/sim/load"
	"github.com/stockbus/stockbus/sim/workload"
)

// seq is a Source of orders numbered from 1, as a workload's stream numbers them.
type seq struct{ n int }

func (s *seq) Next() workload.Order {
	s.n++
	return workload.Order{ID: fmt.Sprintf("o-%d", s.n), Seq: s.n}
}

// clock is a run's clock that starts now.
func clock() *load.Run {
	start := time.Now()
	run := &load.Run{Now: func() time.Duration { return time.Since(start) }, Stopped: func() bool { return false }}
	run.Window.Reset()
	return run
}

// A load model drives any Server: here one that notes which orders came. The closed model with
// 3 workers sends each of 10 orders once and closes the window when the plan runs out; the open
// model at a million orders a second, with room in the backlog for all, sends each once at its
// place on the schedule, however late the workers pick them up.
func Example() {
	var mu sync.Mutex
	var got []int
	var dues []time.Duration
	serve := func(w int, a load.Arrival, start time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, a.Order.Seq)
		dues = append(dues, a.Due)
	}

	closed := clock()
	load.Closed{Workers: 3, Orders: 10, WarmupOrders: 2}.Drive(closed, &seq{}, serve)
	slices.Sort(got)
	fmt.Println("closed:", got, "window closed:", closed.Window.End.Load() >= closed.Window.Start.Load())

	got, dues = nil, nil
	open := clock()
	s := load.Open{Workers: 2, Backlog: 5, Orders: 5, Rate: 1e6}.Drive(context.Background(), open, &seq{}, serve, nil)
	slices.Sort(got)
	slices.Sort(dues)
	fmt.Println("open:", got, dues, "dropped:", s.Dropped, "measured:", s.MeasuredArrivals, "handed over:", open.Enqueued.Load())
	// Output:
	// closed: [1 2 3 4 5 6 7 8 9 10] window closed: true
	// open: [1 2 3 4 5] [0s 1µs 2µs 3µs 4µs] dropped: 0 measured: 5 handed over: 5
}
