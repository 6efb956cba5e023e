package sim

import (
	"sync"
)

// runClosed lets every worker take the plan's next order as soon as its last one returned, until
// the plan (or the time) runs out. Sharing one stream keeps the workers busy to the end even when
// some orders take a thousand times longer than others.
func (r *run) runClosed() {
	p := &pool{s: r.plan.Stream(0), left: r.cfg.Orders}
	if r.cfg.Duration > 0 {
		p.left = -1
	}
	if r.cfg.WarmupOrders == 0 {
		r.win.start.Store(int64(r.cfg.Warmup))
	}
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.closedLoop(p) })
	}
	wg.Wait()
}

// pool hands out the plan's orders in order, to whichever worker asks.
type pool struct {
	mu   sync.Mutex
	s    *Stream
	left int // -1: no limit
}

func (p *pool) next() (Order, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left == 0 {
		return Order{}, false
	}
	if p.left > 0 {
		p.left--
	}
	return p.s.Next(), true
}

func (w *worker) closedLoop(p *pool) {
	r := w.run
	defer func() { r.win.end.CompareAndSwap(-1, int64(r.now())) }() // the first worker out closes the window
	for !r.stopped.Load() {
		if r.cfg.Duration > 0 && r.now() >= r.cfg.Duration {
			return
		}
		o, ok := p.next()
		if !ok {
			return
		}
		start := r.now()
		if o.Seq == r.cfg.WarmupOrders+1 {
			r.win.start.Store(int64(max(start, r.cfg.Warmup)))
		}
		w.serve(o, start, start, start, false)
	}
}
