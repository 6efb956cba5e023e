package sqlstore

import "github.com/stockbus/stockbus/domain"

// LoggedEvent is a row of a SQL store's event log: an event as its commit stored it. The
// sqlite and postgres packages export it under their own names.
type LoggedEvent struct {
	Seq         uint64       // position in commit order over every store on the database, from 1
	Type        string       // "Allocated", "OutOfStock" or "Deallocated"
	CausationID string       // the event's CausationID, "" for a root
	Event       domain.Event // as committed, with its ID
}
