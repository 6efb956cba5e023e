// Package dispatch is the simulator's dispatch strategies: what happens to the events a unit of
// work commits. A Strategy takes them from the request (Dispatch) and sees them delivered, inside
// the request (sync, sync-retry), from a bounded in-memory queue (async) or from the store's
// outbox table (outbox); it reaches the run only through the Host it is started with, so it
// knows nothing of how the run records what it does. Each strategy is one file, registered by
// name (Register, New, Names); sim.Run looks Config.Strategy up there.
package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/faults"
)

// Strategy is what happens to events after the unit of work commits them. The run calls Start
// before the first order and again after every crash (the restarted process), Dispatch on a
// worker's goroutine inside each request whose commit carried events (its time is the request's
// dispatch time), and Stop once after the last order and the end of the faults.
//
// A strategy never calls the mailer itself: it hands events to Host.Deliver, which runs the bus
// and records every send against the goroutine's own log, so the history stays outside the code
// under test. To add a strategy, write one and Register it.
type Strategy interface {
	// Promise states what the strategy guarantees; sim.Check holds every run to it.
	Promise() Promise
	// Durable reports whether the events a commit carries are stored with it (an outbox), so
	// that a crash cannot lose them. Events of other strategies live in memory until delivered.
	Durable() bool
	// MailerOptions are the options the strategy needs on the mailer (the outbox de-duplicates).
	MailerOptions() []fakes.MailerOption
	// Middleware wraps the bus's handlers (sync-retry retries them).
	Middleware() []service.Middleware
	// Start starts the goroutines of one life of the process. ctx ends when that life ends (a
	// crash) or the run is interrupted: they must then stop at once, leaving what they hold.
	// After a crash Start is called again: the new goroutines start from nothing in memory.
	Start(ctx context.Context, h Host) error
	// Dispatch hands over the events one commit carried. ctx is the worker's; or, for a Durable
	// strategy, that of one of its own goroutines whose reallocation committed (a Deallocated it
	// delivered, sim.Config.QuantityChanges), so it must be safe for concurrent use. A strategy
	// that is not Durable never gets its own goroutines' events: they join the bus call running
	// there. It returns ErrDied when the worker's process died under it.
	Dispatch(ctx context.Context, events []domain.Event) error
	// Stop waits until every event handed over to the live process has been delivered, or until
	// the ctx given to Start ends, and then until every goroutine of every life has returned.
	Stop()
	// Stats reports what the strategy saw; it is called after Stop.
	Stats() Stats
}

// Host is the run, as a strategy sees it. Its methods are safe for concurrent use.
type Host interface {
	// Actor returns the context of a new goroutine of the strategy, named like "h0": what it
	// sends is recorded in its own log under that name, and crash points know who they hit.
	Actor(ctx context.Context, name string) context.Context
	// Deliver handles the event on the bus (which mails it) on behalf of the actor in ctx.
	Deliver(ctx context.Context, e domain.Event) error
	// Discarded records, on the worker's goroutine (ctx is Dispatch's), that a committed event
	// was dropped on purpose and will never be mailed. It reports false, recording nothing, when
	// the worker's process has died.
	Discarded(ctx context.Context, e domain.Event) bool
	// Abandoned records, on the worker's goroutine, that a committed event was never handed over
	// because the run was stopped first.
	Abandoned(ctx context.Context, e domain.Event)
	// Store is the run's store, as far as a strategy uses it: its outbox table.
	Store() Store
	// Crash asks the fault plan whether the process crashes where the actor in ctx stands, and
	// if so crashes it and reports true: the actor's goroutine must then return at once.
	Crash(ctx context.Context, p faults.Point) bool
	// Alive reports whether the process the actor in ctx belongs to is still the live one.
	Alive(ctx context.Context) bool
	// Step runs fn, a step the world outside can see (marking an outbox row done), only if the
	// actor's process is alive, atomically with respect to crashes; it reports whether fn ran.
	Step(ctx context.Context, fn func()) bool
	// Marked records, inside a Step, that the outbox rows of these event IDs were marked done:
	// a crash after it no longer counts them as sent and not marked (sim.CrashOp.Unmarked).
	Marked(ids ...string)
}

// Store is what a strategy needs of the run's store: the outbox table (outbox.Store, the port
// the library's relay claims and marks rows through), the switch that makes commits fill it and
// its counts. Every store a run can have (sim.Store) is one.
type Store interface {
	outbox.Store
	// EnableOutbox makes every later commit store its events as outbox rows.
	EnableOutbox()
	// OutboxCounts returns how many outbox rows are pending and how many are done.
	OutboxCounts() (pending, done int)
}

var _ Store = (*fakes.Store)(nil)

// Stats is what a strategy saw during a run. Fields that do not apply are zero.
type Stats struct {
	MaxDepth      int           `json:"max_depth"`      // async: deepest the queue was at an enqueue; outbox: most rows pending
	MeanDepth     float64       `json:"mean_depth"`     // async: mean queue depth at an enqueue
	Full          int64         `json:"full"`           // async: enqueues that found the queue full (then blocked or dropped)
	Blocked       time.Duration `json:"blocked_ns"`     // async, block: time requests spent waiting for room
	Pending       int           `json:"pending"`        // events handed over but not delivered when the strategy stopped
	HandlerErrors int64         `json:"handler_errors"` // deliveries that returned an error
	Lives         int           `json:"lives"`          // times the strategy's goroutines were started: 1 + restarts after crashes
}

// ErrDied is what a strategy's Dispatch, or a step of one of its goroutines, returns when the
// process it belongs to died under it: the events it held die with the process.
var ErrDied = errors.New("the process died")
