package sim_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim"
)

// overheadConfig is one worker, no mailer latency: every nanosecond is the stack's or the simulator's.
func overheadConfig(orders int) sim.Config {
	cfg := sim.Default()
	cfg.Workers, cfg.Mailer, cfg.Orders, cfg.WarmupOrders = 1, sim.FixedLatency(0), orders, orders/10
	return cfg
}

// rawRun sends the plan's orders through a bare stack (Bootstrap on the fakes) in a plain loop
// that generates each order as it goes, like any client, and returns the time per order after
// the warm-up, and the bytes allocated and kept per order over the whole loop. (Generating them all beforehand is ~20% faster, and not because of the work it
// moves: the pre-built orders raise the live heap, and so the garbage collector's goal, and the
// loop then collects less often. That would flatter the baseline.)
func rawRun(b *testing.B, cfg sim.Config) rawCost {
	ctx := context.Background()
	plan, err := sim.NewPlan(cfg)
	if err != nil {
		b.Fatal(err)
	}
	store := fakes.NewStore()
	// The same fakes as the simulator's stack: a mailer and a broker that capture what they get
	// (the broker, as the simulator's does, each publication's channel and event ID).
	uow := service.Bootstrap(store, fakes.NewMailer(), service.WithPublisher(fakes.NewPublisher(fakes.KeepIDs())))
	for _, bs := range plan.Batches {
		if err := service.AddBatch(ctx, uow, bs.Ref, bs.SKU, bs.Qty, bs.ETA); err != nil {
			b.Fatal(err)
		}
	}
	s := plan.Stream(0)
	before := memNow() // with a collection first, as sim.Run does before its first order
	var start time.Time
	for i := range cfg.Orders {
		if i == cfg.WarmupOrders {
			start = time.Now()
		}
		o := s.Next()
		if _, err := service.Allocate(ctx, uow, o.ID, o.SKU, o.Qty); err != nil && !errors.Is(err, domain.ErrOutOfStock) {
			b.Fatal(err)
		}
	}
	per := time.Since(start) / time.Duration(cfg.Orders-cfg.WarmupOrders)
	after := memNow()
	runtime.KeepAlive(uow)
	return rawCost{per: per, alloc: float64(after.TotalAlloc-before.TotalAlloc) / float64(cfg.Orders),
		heap: (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(cfg.Orders)}
}

// rawCost is what rawRun measured: time per order, bytes allocated and kept per order.
type rawCost struct {
	per         time.Duration
	alloc, heap float64
}

// memNow collects the garbage and reads the memory statistics.
func memNow() runtime.MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func perOrder(r sim.Report) time.Duration {
	return time.Duration(float64(r.Window) / float64(r.Counts.Completed) * float64(r.Config.Workers))
}

// BenchmarkOverhead compares the time per order of the simulator (one worker, no mailer
// latency) with a plain loop over the same orders on the same stack, alternating the two and
// taking medians so that a noisy neighbour does not decide. The difference is the simulator's
// own bookkeeping: timing, histograms, history, the shared order pool, the dispatcher wrapper
// and the recording mailer. outside-% is the share of the window the worker spent outside
// service.Allocate, as the simulator measured it.
//
//	go test -run '^$' -bench Overhead -count 5 ./sim/
func BenchmarkOverhead(b *testing.B) {
	cfg := overheadConfig(30_000)
	var raw, simulated, outside []float64
	for b.Loop() {
		for range 7 {
			raw = append(raw, float64(rawRun(b, cfg).per))
			r, err := sim.Run(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			simulated = append(simulated, float64(perOrder(r)))
			outside = append(outside, 100*(1-float64(r.Latency.Mean)*float64(r.Counts.Measured)/float64(r.Window)))
		}
	}
	rawNs, simNs := median(raw), median(simulated)
	b.ReportMetric(rawNs, "raw-ns/order")
	b.ReportMetric(simNs, "sim-ns/order")
	b.ReportMetric(100*(simNs-rawNs)/simNs, "overhead-%")
	b.ReportMetric(median(outside), "outside-%")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkScale runs 2 workers with no mailer latency on 10 skus for 1e4, 1e5 and 1e6 orders
// and reports the steady-state time per order (the measured window, warm-up excluded), the
// bytes the heap kept per order, the bytes the whole Run allocated per order (its history
// and judging included) and the peak heap. The cost per order must stay flat;
// BenchmarkScaleRaw tells how much of any growth is the stack's own.
//
//	go test -run '^$' -bench Scale -benchtime 1x ./sim/
func BenchmarkScale(b *testing.B) {
	for _, orders := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("orders=%d", orders), func(b *testing.B) {
			cfg := sim.Default()
			cfg.Workers, cfg.Mailer, cfg.Orders, cfg.SKUs, cfg.WarmupOrders = 2, sim.FixedLatency(0), orders, 10, orders/10
			var r sim.Report
			var alloc uint64
			for b.Loop() {
				before := memNow()
				var err error
				if r, err = sim.Run(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
				after := memNow()
				alloc = after.TotalAlloc - before.TotalAlloc
				if !r.OK {
					b.Fatalf("invariants broken: %+v", r.Invariants)
				}
			}
			b.ReportMetric(float64(perOrder(r))/float64(cfg.Workers), "ns/order")
			b.ReportMetric(float64(perOrder(r)), "worker-ns/order")
			b.ReportMetric(r.Memory.PerOrder, "heap-B/order")
			b.ReportMetric(float64(r.Memory.HistoryBytes)/float64(orders), "sim-B/order")
			b.ReportMetric(float64(alloc)/float64(orders), "alloc-B/order") // the whole Run: setup, history and judging too
			b.ReportMetric(float64(r.Memory.PeakHeap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(r.Elapsed.Seconds(), "run-s")
		})
	}
}

// BenchmarkScaleRaw is BenchmarkScale's control: the same orders in a plain loop on the bare stack
// (one goroutine), so a growth in the cost per order can be told apart from the simulator's, and
// the bytes the stack allocates and keeps per order from the simulator's.
//
//	go test -run '^$' -bench ScaleRaw -benchtime 1x ./sim/
func BenchmarkScaleRaw(b *testing.B) {
	for _, orders := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("orders=%d", orders), func(b *testing.B) {
			cfg := overheadConfig(orders)
			var c rawCost
			for b.Loop() {
				c = rawRun(b, cfg)
			}
			b.ReportMetric(float64(c.per), "ns/order")
			b.ReportMetric(c.alloc, "alloc-B/order")
			b.ReportMetric(c.heap, "heap-B/order")
		})
	}
}
