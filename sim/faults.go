package sim

import "errors"

// Point is a place in the life of an order or an event where a fault can strike. The run asks
// Config.Faults at each one; without faults nothing happens there.
type Point int

// Fault points, in the order an event meets them.
const (
	// BeforeCommit: the unit of work did its work, nothing is stored yet (a store hook on the
	// worker's goroutine). A crash here stores nothing; the order's outcome is Unknown.
	BeforeCommit Point = iota + 1
	// AfterCommit: the product and (outbox) the event rows are stored, nothing is dispatched yet.
	// A crash here leaves committed events that the request never handed over.
	AfterCommit
	// AfterHandler: one handler of an event returned (bus middleware, on whichever goroutine runs
	// the bus). A crash here stops publishing half way.
	AfterHandler
	// AfterDeliver: an async handler goroutine finished one event.
	AfterDeliver
	// RelaySent: an outbox relay sender mailed a row and has not marked it done.
	RelaySent
)

var pointNames = [...]string{"", "before-commit", "after-commit", "after-handler", "after-deliver", "relay-sent"}

func (p Point) String() string {
	if p > 0 && int(p) < len(pointNames) {
		return pointNames[p]
	}
	return "point?"
}

// Faults decides where the simulated process crashes. Crash is called at every Point with the
// name of the goroutine there ("w0" worker, "h1" async handler, "r2" relay sender) and must be
// safe for concurrent use; seed it so runs replay.
//
// What a crash does: at BeforeCommit and AfterCommit the worker's request is abandoned on the
// spot (its outcome is Unknown) and the worker goes on with its next order; at AfterHandler
// publishing stops with an error and the request's outcome is Unknown; an async handler or a relay
// sender that crashes loses the event in its hands (the relay forgets its progress and starts
// again from the oldest pending row). Everything the store committed survives.
type Faults interface {
	Crash(p Point, actor string) bool
}

// errCrashed is what a handler returns when the process "died" inside it.
var errCrashed = errors.New("simulated crash")

// crashed is the panic value that unwinds a worker's request from a store hook.
type crashed struct{ at Point }
