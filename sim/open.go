package sim

import (
	"context"

	"github.com/stockbus/stockbus/sim/load"
)

// runOpen sends the plan under the open model (load.Open): orders on a schedule fixed in advance,
// whatever the system does, served by the worker pool, waiting in the backlog when all are busy
// and dropped when that is full. Latency counts from the due time.
func (r *run) runOpen(ctx context.Context) {
	m := load.Open{Workers: len(r.workers), Backlog: r.cfg.Backlog, Orders: r.cfg.Orders,
		Duration: r.cfg.Duration, Rate: r.cfg.Rate, Poisson: r.cfg.Arrivals == Poisson, Seed: r.cfg.Seed,
		WarmupOrders: r.cfg.WarmupOrders, Warmup: r.cfg.Warmup}
	s := m.Drive(ctx, &r.load, r.plan.Stream(0), r.serveOn, r.dropped)
	r.sched.dropped, r.sched.measuredArrivals, r.sched.lastDue = s.Dropped, s.MeasuredArrivals, s.LastDue
}

// dropped records an arrival the full backlog turned away, in the history (Config.Record).
func (r *run) dropped(a load.Arrival) {
	if r.cfg.Record {
		o := a.Order
		r.sched.ops = append(r.sched.ops, OrderOp{ID: o.ID, SKU: o.SKU, Qty: o.Qty, Worker: -1, Outcome: Dropped, Start: a.Due, End: a.Due})
	}
}
