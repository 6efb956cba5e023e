package hist_test

import (
	"fmt"
	"sync"
	"time"

	"github.com/stockbus/stockbus/sim/hist"
)

// A load model records each order into the histograms of the goroutine that served it, with no
// lock, and merges them once the run is over.
func ExampleHistogram() {
	perWorker := []*hist.Histogram{hist.New(), hist.New()}
	var wg sync.WaitGroup
	for w, h := range perWorker {
		wg.Go(func() {
			for k := 1; k <= 500; k++ { // worker 0: 1µs..500µs, worker 1: 501µs..1ms
				h.Record(time.Duration(w*500+k) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	all := hist.New()
	for _, h := range perWorker {
		all.Merge(h)
	}
	d := all.Dist()
	fmt.Println(d.Count, d.Min, d.Max, d.Mean) // exact
	fmt.Println(d.P50, d.P99)                  // HdrHistogram's, to 3 significant digits
	// Output:
	// 1000 1µs 1ms 500.5µs
	// 500.223µs 990.207µs
}

// The timeline counts each order in the interval it ended in; each goroutine hands an interval
// over once it is behind it, and Flush hands over the last. An interval's latencies are kept to
// 1 significant digit, so that a long run's timeline stays small.
func ExampleTimeline() {
	tl := hist.NewTimeline()
	r := tl.Recorder() // one per goroutine
	for k := range 5 { // an order ending every 0.4ms, each after 2ms
		r.Record(time.Duration(k)*400*time.Microsecond, 2*time.Millisecond)
	}
	r.Flush()
	for _, iv := range tl.Intervals(2 * time.Millisecond) {
		fmt.Println(iv.Start, iv.Width, iv.Orders, iv.Throughput, iv.Max.Round(100*time.Microsecond))
	}
	// Output:
	// 0s 1ms 3 3000 2ms
	// 1ms 1ms 2 2000 2ms
}
