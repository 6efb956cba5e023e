package load

import (
	"sync"
	"time"

	"github.com/stockbus/stockbus/sim/workload"
)

// Closed is the closed model: Workers clients, each sending the source's next order as soon as its
// last one returned, until Orders were sent (or, with Duration, until that much time passed).
// Sharing one source keeps the workers busy to the end even when some orders take a thousand
// times longer than others. An order's Due is when its worker took it.
type Closed struct {
	Workers      int
	Orders       int           // orders to send; no limit when Duration > 0
	Duration     time.Duration // 0: by Orders
	WarmupOrders int           // the first orders, left out of the window
	Warmup       time.Duration // the first stretch of time, left out of the window
}

// Drive sends src's orders to serve under the closed model, and returns when every worker did.
func (m Closed) Drive(run *Run, src Source, serve Server) {
	p := &pool{s: src, left: m.Orders}
	if m.Duration > 0 {
		p.left = -1
	}
	if m.WarmupOrders == 0 {
		run.Window.Start.Store(int64(m.Warmup))
	}
	var wg sync.WaitGroup
	for w := range m.Workers {
		wg.Go(func() { m.loop(run, p, w, serve) })
	}
	wg.Wait()
}

// loop is one client: the next order as soon as the last returned.
func (m Closed) loop(run *Run, p *pool, w int, serve Server) {
	defer func() { run.Window.End.CompareAndSwap(-1, int64(run.Now())) }() // the first worker out closes the window
	for !run.Stopped() {
		if m.Duration > 0 && run.Now() >= m.Duration {
			return
		}
		o, ok := p.next()
		if !ok {
			return
		}
		start := run.Now()
		if o.Seq == m.WarmupOrders+1 {
			run.Window.Start.Store(int64(max(start, m.Warmup)))
		}
		serve(w, Arrival{Order: o, Due: start, Emitted: start}, start)
	}
}

// pool hands out the source's orders in order, to whichever worker asks.
type pool struct {
	mu   sync.Mutex
	s    Source
	left int // -1: no limit
}

func (p *pool) next() (workload.Order, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left == 0 {
		return workload.Order{}, false
	}
	if p.left > 0 {
		p.left--
	}
	return p.s.Next(), true
}
