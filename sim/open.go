package sim

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

type arrival struct {
	order        Order
	due, emitted time.Duration
	measured     bool
}

// runOpen sends orders on a schedule fixed in advance, whatever the system does: a worker of the
// pool serves each; when all are busy orders wait in the backlog, and when that is full they are
// dropped. Latency counts from the due time.
func (r *run) runOpen(ctx context.Context) {
	backlog := make(chan arrival, r.cfg.Backlog)
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() {
			for a := range backlog {
				w.serve(a.order, a.due, a.emitted, r.now(), a.measured)
			}
		})
	}
	defer wg.Wait()
	defer close(backlog)

	s := r.plan.Stream(0)
	gaps := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 0xa771))
	mean := float64(time.Second) / r.cfg.Rate
	var due time.Duration // of the next arrival, since the start
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; r.cfg.Duration > 0 || i < r.cfg.Orders; i++ {
		if r.stopped.Load() || r.cfg.Duration > 0 && due >= r.cfg.Duration {
			return
		}
		if d := due - r.now(); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		o := s.Next()
		measured := i >= r.cfg.WarmupOrders && due >= r.cfg.Warmup
		if measured {
			r.win.start.CompareAndSwap(-1, int64(due))
			r.sched.measuredArrivals++
			r.sched.lastDue = due
		}
		select {
		case backlog <- arrival{o, due, r.now(), measured}:
			r.enqueued.Add(1)
		default:
			r.sched.dropped++
			if r.cfg.Record {
				r.sched.ops = append(r.sched.ops, OrderOp{ID: o.ID, SKU: o.SKU, Qty: o.Qty, Worker: -1, Outcome: Dropped, Start: due, End: due})
			}
		}
		if r.cfg.Arrivals == Poisson {
			due += time.Duration(gaps.ExpFloat64() * mean)
		} else {
			due = time.Duration(float64(i+1) * mean) // exact multiples: no drift
		}
	}
}
