// Package faults is the simulator's crash plan: the points where the simulated process can crash
// (Point), the Plan a run consults at each one, and the two plans a run can be given: seeded
// rates (Rates, NewSeeded) and a plan by count (Visits, NewCounter), which crashes at the n-th
// visit of a point. It knows nothing of the process it crashes: the run (package sim) holds the
// process's lives and does the crashing.
package faults

import (
	"fmt"
	"strconv"
	"strings"
)

// Point is a place in the life of an order or an event where the simulated process can crash.
// The run asks the fault plan at each one; without crash faults nothing happens there.
type Point int

// Crash points, in the order an event meets them.
const (
	// BeforeCommit: the unit of work did its work, nothing is stored yet (on the worker's
	// goroutine). A crash here stores nothing.
	BeforeCommit Point = iota + 1
	// AfterCommit: the product and (outbox) the event rows are stored, nothing is dispatched yet.
	// A crash here leaves committed events that nobody will hand over.
	AfterCommit
	// AfterHandler: one handler of an event returned (bus middleware, on whichever goroutine runs
	// the bus): publishing stops half way, after k handlers.
	AfterHandler
	// AfterDeliver: an async handler goroutine finished one event.
	AfterDeliver
	// RelaySent: an outbox relay sender mailed a row and has not marked it done.
	RelaySent
)

var pointNames = [...]string{"", "before-commit", "after-commit", "after-handler", "after-deliver", "relay-sent"}

// Points lists every crash point, in order.
func Points() []Point {
	return []Point{BeforeCommit, AfterCommit, AfterHandler, AfterDeliver, RelaySent}
}

// String names the point as ParsePoint reads it, "after-commit"; "point(9)" for a point that is
// none of Points.
func (p Point) String() string {
	if p > 0 && int(p) < len(pointNames) {
		return pointNames[p]
	}
	return "point(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText makes points readable in JSON.
func (p Point) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ParsePoint parses a point's name, e.g. "after-commit".
func ParsePoint(s string) (Point, error) {
	for _, p := range Points() {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown crash point %q (want one of %s)", s, strings.Join(pointNames[1:], ", "))
}

// Plan decides where the simulated process crashes. Crash is called at every Point with the
// name of the goroutine there ("w0" worker, "h1" async handler, "r2" relay sender; "h1@3" in the
// process's fourth life) and must be safe for concurrent use; seed it so runs replay.
//
// A crash kills the whole process, not one goroutine: see package sim's documentation.
type Plan interface {
	Crash(p Point, actor string) bool
}

// PlanFunc adapts a function to a Plan.
type PlanFunc func(p Point, actor string) bool

var _ Plan = PlanFunc(nil)

// Crash calls f.
func (f PlanFunc) Crash(p Point, actor string) bool { return f(p, actor) }
