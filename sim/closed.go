package sim

import (
	"time"

	"github.com/stockbus/stockbus/sim/load"
)

// runClosed sends the plan under the closed model (load.Closed): every worker takes the plan's
// next order as soon as its last one returned, until the plan (or the time) runs out.
func (r *run) runClosed() {
	m := load.Closed{Workers: len(r.workers), Orders: r.cfg.Orders, Duration: r.cfg.Duration,
		WarmupOrders: r.cfg.WarmupOrders, Warmup: r.cfg.Warmup}
	m.Drive(&r.load, r.plan.Stream(0), r.serveOn)
}

// serveOn is the load models' load.Server: worker w serves the arrival.
func (r *run) serveOn(w int, a load.Arrival, start time.Duration) {
	r.workers[w].serve(a.Order, a.Due, a.Emitted, start, a.Measured)
}
