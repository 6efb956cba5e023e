package history

import (
	"strconv"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim/faults"
	"github.com/stockbus/stockbus/sim/workload"
)

// Outcome is how an order ended, as the client that sent it saw it.
type Outcome uint8

// Order outcomes.
const (
	Allocated  Outcome = iota + 1 // committed with a batch
	OutOfStock                    // committed with an OutOfStock event
	Rejected                      // invalid order, unknown sku or conflicting quantity: nothing committed
	Exhausted                     // gave up after the retry budget of version conflicts: nothing committed
	Failed                        // any other error
	Unknown                       // the process died before the client learned the outcome
	Dropped                       // open model: never sent, the backlog was full
)

var outcomeNames = [...]string{"", "allocated", "out-of-stock", "rejected", "exhausted", "failed", "unknown", "dropped"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// MarshalText makes outcomes readable in JSON.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// OrderOp is one order as its client saw it. Times are since the run started; in the open model
// Start is when the order was due, not when a worker picked it up.
type OrderOp struct {
	ID         string  `json:"id"`
	SKU        string  `json:"sku"`
	Qty        int     `json:"qty"`
	Worker     int     `json:"worker"` // -1: never reached a worker
	Outcome    Outcome `json:"outcome"`
	Batch      string  `json:"batch,omitempty"`
	PublishErr bool    `json:"publish_error,omitempty"` // committed, but dispatching its events failed
	// Resent is how many times the client sent the order again after an unknown outcome
	// (sim.Config.ClientRetry); Outcome is what the last attempt saw.
	Resent int `json:"resent,omitempty"`
	// Bad is the defect of an invalid order (sim.Config.BadInput): what was sent is not SKU and Qty.
	Bad workload.Defect `json:"bad,omitempty"`
	// Start is when the order was due (the open model's schedule; a closed worker's send), End
	// when it returned.
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	// Latency is what the report's latency recorded for the order when Measured (outside the
	// warm-up): from its intended start, End-Start, however late a worker picked it up.
	Latency  time.Duration `json:"latency_ns"`
	Measured bool          `json:"measured,omitempty"`
}

// EventState is what became of an event the domain raised.
type EventState uint8

// Event states.
const (
	RolledBack EventState = iota + 1 // raised in a unit of work that did not commit
	Committed                        // committed and handed to the strategy
	Discarded                        // committed, then dropped by a full async queue
	Abandoned                        // committed, never handed over: the run was stopped or crashed first
)

var eventStateNames = [...]string{"", "rolled-back", "committed", "discarded", "abandoned"}

func (s EventState) String() string {
	if int(s) < len(eventStateNames) {
		return eventStateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText makes states readable in JSON.
func (s EventState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// EventKind is the type of an event, as far as the accounting needs to tell them apart.
type EventKind uint8

// Event kinds. An OutOfStock is delivered when it is mailed; any other event when its handler
// (a publication) completed.
const (
	KindUnknown EventKind = iota // not seen committed: its type is not recorded
	KindOutOfStock
	KindAllocated
	KindDeallocated
	KindOther
)

var kindNames = [...]string{"?", "OutOfStock", "Allocated", "Deallocated", "other"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText makes kinds readable in JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// KindOf returns the kind of e.
func KindOf(e domain.Event) EventKind {
	switch e.(type) {
	case domain.OutOfStock:
		return KindOutOfStock
	case domain.Allocated:
		return KindAllocated
	case domain.Deallocated:
		return KindDeallocated
	}
	return KindOther
}

// EventOp is one event the domain raised, with the ID the unit of work stamped on it:
// "e<stream>-<seq>", from the sequence of the goroutine that ran the unit of work. A worker's
// stream is its number; a reallocation run by an async handler or an outbox relay
// (sim.Config.QuantityChanges) takes its IDs from that actor's stream, counted on from
// sim.Config.Workers, and names it in Actor.
type EventOp struct {
	ID     string `json:"id"`
	Order  string `json:"order"`  // the order whose unit of work raised it
	Worker int    `json:"worker"` // -1: raised by Actor, which is no worker
	// Actor is the goroutine, not a worker, whose unit of work raised it ("h0", "r1@2").
	Actor string `json:"actor,omitempty"`
	// Qty is the quantity of the line a Deallocated event took out of its batch.
	Qty         int           `json:"qty,omitempty"`
	State       EventState    `json:"state"`
	Kind        EventKind     `json:"kind"`
	Unknown     bool          `json:"client_unknown,omitempty"` // the client of its request never learned the outcome
	CommittedAt time.Duration `json:"committed_ns"`
}

// SendOp is one call to the mailer (or, for events other than OutOfStock, to the publisher),
// recorded by the goroutine that made it.
type SendOp struct {
	Event string `json:"event"` // the ID of the event that caused the mail
	Actor string `json:"actor"` // "w3" worker, "h1" async handler, "r0" outbox relay sender
	// At is when Send returned; for a publication a worker made in a run with no broker report and
	// no crashes, when the dispatch that made it returned (later by what the bus's other handlers
	// did after it, still inside the order's request): no figure reads a closer time of those
	// (the accounting compares it with the end of the faults, after every order), and it saves
	// a reading of the clock per order.
	At      time.Duration `json:"at_ns"`
	Took    time.Duration `json:"took_ns"`
	Err     bool          `json:"error,omitempty"`
	Timeout bool          `json:"timeout,omitempty"` // given up after the mailer's timeout: the sender does not know the outcome
	// Accepted is what the mail server did: it took the mail (or recognised a repeat). For a
	// timed-out send the sender saw an error either way; the simulator asks the server.
	Accepted bool `json:"accepted,omitempty"`
	Publish  bool `json:"publish,omitempty"` // a publication to the broker, not a mail
}

// Publication is one event the broker (the fake publisher) accepted, in order.
type Publication struct {
	Event   string `json:"event"`
	Channel string `json:"channel"`
}

// ProductState is a product's version as the store holds it at the end of a run.
type ProductState struct {
	SKU     string `json:"sku"`
	Version int    `json:"version"`
}

// BadBatch is one invalid batch the run tried to add (sim.Config.BadInput), and what came back.
type BadBatch struct {
	What    string `json:"what"`
	Err     string `json:"error"`   // empty: it was accepted, a violation
	Changed bool   `json:"changed"` // the store changed: a violation
}

// Mail is one mail the mail server (the fake mailer) accepted, in delivery order.
type Mail struct {
	Event string `json:"event"`
	To    string `json:"to"`
	Body  string `json:"body"`
}

// CrashOp is one crash of the simulated process.
type CrashOp struct {
	Seq   int           `json:"seq"`
	At    time.Duration `json:"at_ns"`
	Point faults.Point  `json:"point"`
	Actor string        `json:"actor"`           // the goroutine at the point
	Order string        `json:"order,omitempty"` // the order a crashing worker was serving
	// Carried is, at AfterCommit, the events the commit that had just been stored carried.
	Carried []string `json:"carried,omitempty"`
	// InFlight is every committed event the process held only in memory at the crash (on a
	// worker's stack, in the async queue, in a handler's hands, in a send's backoff): what it lost.
	// Outbox events are stored with their commit and are never in it.
	InFlight []string `json:"in_flight,omitempty"`
	// Unmarked is, under the outbox, every row that a relay of the dying process had sent (the
	// send succeeded) and not yet marked done: each is claimed and sent again after the restart,
	// so each is one surplus mail or publication (or dedup hit) per crash that caught it. Which
	// rows other relays hold at a crash depends on the scheduler, so the history's digest leaves
	// it out.
	Unmarked []string `json:"unmarked,omitempty"`
}

// Reallocation is what became of a line its batch no longer holds: the Allocate command that a
// Deallocated event sent, and its outcome (Allocated into Batch, or OutOfStock).
type Reallocation struct {
	Cause   string  // the Deallocated event's ID
	Order   string  // the order of the line
	Qty     int     // its quantity
	Batch   string  // where it went, when Outcome is Allocated
	Outcome Outcome // Allocated, OutOfStock or Failed
}
