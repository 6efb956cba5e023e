// Package load drives a plan's orders into a system under a load model: the closed model
// (Closed: each worker sends its next order when the last returned) or the open model (Open:
// orders arrive on a schedule fixed in advance, whatever the system does). It knows nothing of the
// system under load: it hands each order, with its intended start, to a Server, and keeps the
// measured window. Latency that counts from Arrival.Due, the intended start, cannot hide a slow
// system's queueing (coordinated omission).
package load

import (
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/sim/workload"
)

// Source hands out the orders to send, in order. *workload.Stream is one. A model calls it from
// one goroutine at a time.
type Source interface {
	Next() workload.Order
}

// Arrival is one order as a model hands it to a worker, with its timing on the run's clock.
type Arrival struct {
	Order    workload.Order
	Due      time.Duration // the intended start: when the order should have started
	Emitted  time.Duration // when the model let it go (the open model's timers fire late)
	Measured bool          // open model: the arrival is outside the warm-up; closed runs go by the Window
}

// Server serves one arrival on worker w (0 <= w < the model's workers), picked up at start. Each
// worker's calls come from one goroutine, one after another; different workers' calls run at the
// same time. A model returns only after every call returned.
type Server func(w int, a Arrival, start time.Duration)

// Run is what a model shares with the system under load while it drives it. Now and Stopped must
// be set; the zero Window and Enqueued are ready to use once Reset.
type Run struct {
	Now      func() time.Duration // the run's clock: the time since its start
	Stopped  func() bool          // true once no new order may start (the run was interrupted)
	Window   Window
	Enqueued atomic.Int64 // open model: arrivals handed to the workers (safe to read at any time)
}

// Window is the measured window, in nanoseconds on the run's clock: -1 until it opens (closes).
// A closed run opens it when the first order after the warm-up starts and closes it when the first
// worker finds no order left; an open run opens it at the first measured arrival and never closes
// it. Both ends are safe to read at any time.
type Window struct {
	Start, End atomic.Int64
}

// Reset sets both ends to -1: the window has not opened.
func (w *Window) Reset() {
	w.Start.Store(-1)
	w.End.Store(-1)
}
