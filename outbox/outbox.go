// Package outbox is the relay of the transactional outbox: a store writes the events of a commit
// into an outbox table in the commit's own transaction, and a Relay reads them from there and
// hands each to a Sender (the bus's handlers, a publisher, a mailer), marking it done only after
// the send succeeded. An event is therefore sent at least once, even when the process dies
// between commit and send; the receiver drops repeats by event ID to make it exactly once.
//
// A store offers its table through the small Store port (claim, done, retry, dead); fakes.Store,
// sqlite.Store and postgres.Store implement it, and outboxtest.TestStore checks any
// implementation. Several relays may share one table: a claim is a lease (the relay's name and
// an expiry), so a row held by a live relay is not sent by another, and a row held by a relay
// that died is claimed again once its lease has ended.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stockbus/stockbus/domain"
)

var (
	// ErrNotClaimed is wrapped by Retry and Dead when the relay does not hold the row's claim
	// (its lease ended and another relay claimed the row, or the row is done or parked). Nothing
	// changes.
	ErrNotClaimed = errors.New("row not claimed by this relay")
	// ErrInvalid is wrapped when a port method or New is given bad arguments (an empty relay
	// name, a limit below 1, a lease that ends before it starts). Nothing changes.
	ErrInvalid = errors.New("invalid outbox request")
	// ErrCrash is what a Hook returns to make Run stop at once as if the process died there:
	// nothing more is sent, marked or released, and Run returns an error wrapping ErrCrash.
	ErrCrash = errors.New("relay crashed")
)

// Row is an event stored by the commit that recorded it, waiting for a relay to deliver it.
type Row struct {
	Seq      uint64       // position in commit order, from 1
	Event    domain.Event // as committed, with its ID
	Attempts int          // failed sends recorded by Retry or Dead so far
}

// ID returns the row's event ID, the key of every port method.
func (r Row) ID() string { return r.Event.Identity().ID }

// DeadLetter is a row parked by Dead: it is never claimed again.
type DeadLetter struct {
	Row
	Reason string // the error of the send that parked it
}

// Store is the port a store offers its outbox table through. Every method is safe for
// concurrent use, by relays of one process or, for a shared database, of several. Times come
// from the caller (the relay's clock), so every relay sharing a table must keep a clock close to
// the others': a skew eats into the lease.
type Store interface {
	// Claim leases to relay, until until, up to limit rows that are neither done nor parked,
	// whose not-before time is at or before now, and that hold no lease that ends after now. It
	// returns them in commit order. A row is claimed by at most one relay at a time: two claims
	// with the same now never return the same row. limit < 1, an empty relay or until not after
	// now wrap ErrInvalid.
	Claim(ctx context.Context, relay string, now, until time.Time, limit int) ([]Row, error)
	// Done records that the rows with these event IDs were delivered; they are never claimed
	// again. It does not check who holds them (a delivered row is delivered, whoever sent it);
	// unknown and already done IDs are ignored.
	Done(ctx context.Context, ids ...string) error
	// Retry gives back relay's claim on the row with event ID id after a failed send: its
	// attempts grow by one, reason is kept as its last error, and no relay claims it before
	// notBefore. It wraps ErrNotClaimed when relay does not hold the row.
	Retry(ctx context.Context, relay, id string, notBefore time.Time, reason string) error
	// Dead parks the row relay holds with event ID id as a dead letter with reason: its
	// attempts grow by one and it is never claimed again. It wraps ErrNotClaimed when relay does
	// not hold the row.
	Dead(ctx context.Context, relay, id, reason string) error
	// DeadLetters returns every parked row, in commit order.
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
}

// Clock tells a relay the time and wakes it later. Inject one to replay a run or to test leases
// without sleeping (outboxtest.Clock); the zero Options use the system clock.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the Clock of package time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// CheckClaim returns the error, wrapping ErrInvalid, that Store.Claim must return for these
// arguments, or nil when they are valid. Stores call it first.
func CheckClaim(relay string, now, until time.Time, limit int) error {
	switch {
	case relay == "":
		return fmt.Errorf("claim: %w: empty relay", ErrInvalid)
	case limit < 1:
		return fmt.Errorf("claim: %w: limit %d", ErrInvalid, limit)
	case !until.After(now):
		return fmt.Errorf("claim: %w: lease until %v does not end after %v", ErrInvalid, until, now)
	}
	return nil
}
