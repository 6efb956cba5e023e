package sim

import (
	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim/history"
)

// The recorded history lives in sim/history; these are its names as sim always had them.
type (
	// History is history.History: what a run observed from outside the code under test.
	History = history.History
	// OrderOp is history.OrderOp: one order as its client saw it.
	OrderOp = history.OrderOp
	// EventOp is history.EventOp: one event the domain raised.
	EventOp = history.EventOp
	// SendOp is history.SendOp: one call to the mailer or the publisher.
	SendOp = history.SendOp
	// Publication is history.Publication: one event the broker accepted.
	Publication = history.Publication
	// Mail is history.Mail: one mail the mail server accepted.
	Mail = history.Mail
	// CrashOp is history.CrashOp: one crash of the simulated process.
	CrashOp = history.CrashOp
	// Reallocation is history.Reallocation: what became of a line its batch no longer holds.
	Reallocation = history.Reallocation
	// ProductState is history.ProductState: a product's version at the end of a run.
	ProductState = history.ProductState
	// BadBatch is history.BadBatch: one invalid batch the run tried to add.
	BadBatch = history.BadBatch
	// BatchState is history.BatchState: a batch as the store holds it at the end of a run.
	BatchState = history.BatchState
	// Totals is history.Totals: what the clients saw allocated.
	Totals = history.Totals
	// Outcome is history.Outcome: how an order ended, as its client saw it.
	Outcome = history.Outcome
	// EventState is history.EventState: what became of an event the domain raised.
	EventState = history.EventState
	// EventKind is history.EventKind: the type of an event, as the accounting tells them apart.
	EventKind = history.EventKind
)

// Order outcomes (history's).
const (
	Allocated  = history.Allocated
	OutOfStock = history.OutOfStock
	Rejected   = history.Rejected
	Exhausted  = history.Exhausted
	Failed     = history.Failed
	Unknown    = history.Unknown
	Dropped    = history.Dropped
)

// Event states (history's).
const (
	RolledBack = history.RolledBack
	Committed  = history.Committed
	Discarded  = history.Discarded
	Abandoned  = history.Abandoned
)

// Event kinds (history's).
const (
	KindUnknown     = history.KindUnknown
	KindOutOfStock  = history.KindOutOfStock
	KindAllocated   = history.KindAllocated
	KindDeallocated = history.KindDeallocated
	KindOther       = history.KindOther
)

func kindOf(e domain.Event) EventKind { return history.KindOf(e) }

func compareIDs(a, b string) int { return history.CompareIDs(a, b) }

func splitID(id string) (stream, seq int, ok bool) { return history.SplitID(id) }

func parseEventID(id string) (worker, seq int32, ok bool) { return history.ParseEventID(id) }
