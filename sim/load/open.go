package load

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Open is the open model: Orders orders (or, with Duration, as many as fit in it) arrive at Rate
// a second on a schedule fixed in advance, whatever the system does. A worker of the Workers pool
// serves each; when all are busy arrivals wait in a backlog of Backlog, and when that is full they
// are dropped. An arrival's Due is its place on the schedule: its intended start.
type Open struct {
	Workers, Backlog int
	Orders           int           // arrivals to send; no limit when Duration > 0
	Duration         time.Duration // 0: by Orders
	Rate             float64       // arrivals a second, > 0
	Poisson          bool          // exponential gaps of mean 1/Rate drawn from Seed; else exactly 1/Rate
	Seed             int64
	WarmupOrders     int           // the first arrivals, not measured
	Warmup           time.Duration // arrivals due before this are not measured
}

// Schedule is what the open model's scheduler did.
type Schedule struct {
	Dropped          int64         // arrivals the full backlog turned away
	MeasuredArrivals int64         // arrivals outside the warm-up, dropped ones included
	LastDue          time.Duration // the last measured arrival's due time
}

// Drive sends src's orders to serve under the open model, calling dropped (when not nil) on its
// own goroutine for each arrival the full backlog turned away. It stops early when ctx ends or
// run.Stopped says so, and returns when every worker returned.
func (m Open) Drive(ctx context.Context, run *Run, src Source, serve Server, dropped func(Arrival)) Schedule {
	backlog := make(chan Arrival, m.Backlog)
	var wg sync.WaitGroup
	for w := range m.Workers {
		wg.Go(func() {
			for a := range backlog {
				serve(w, a, run.Now())
			}
		})
	}
	defer wg.Wait()
	defer close(backlog)
	return m.schedule(ctx, run, src, backlog, dropped)
}

// schedule lets each arrival go at its due time, into the backlog or dropped.
func (m Open) schedule(ctx context.Context, run *Run, src Source, backlog chan<- Arrival, dropped func(Arrival)) Schedule {
	var sched Schedule
	gaps := rand.New(rand.NewPCG(uint64(m.Seed), 0xa771))
	mean := float64(time.Second) / m.Rate
	var due time.Duration // of the next arrival, since the start
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; m.Duration > 0 || i < m.Orders; i++ {
		if run.Stopped() || m.Duration > 0 && due >= m.Duration {
			return sched
		}
		if d := due - run.Now(); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return sched
			}
		}
		a := Arrival{Order: src.Next(), Due: due, Measured: i >= m.WarmupOrders && due >= m.Warmup}
		if a.Measured {
			run.Window.Start.CompareAndSwap(-1, int64(due))
			sched.MeasuredArrivals++
			sched.LastDue = due
		}
		a.Emitted = run.Now()
		select {
		case backlog <- a:
			run.Enqueued.Add(1)
		default:
			sched.Dropped++
			if dropped != nil {
				dropped(a)
			}
		}
		if m.Poisson {
			due += time.Duration(gaps.ExpFloat64() * mean)
		} else {
			due = time.Duration(float64(i+1) * mean) // exact multiples: no drift
		}
	}
	return sched
}
