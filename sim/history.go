package sim

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stockbus/stockbus/domain"
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
	Unknown                       // the client crashed before it learned the outcome
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
	ID         string        `json:"id"`
	SKU        string        `json:"sku"`
	Qty        int           `json:"qty"`
	Worker     int           `json:"worker"` // -1: never reached a worker
	Outcome    Outcome       `json:"outcome"`
	Batch      string        `json:"batch,omitempty"`
	PublishErr bool          `json:"publish_error,omitempty"` // committed, but dispatching its events failed
	Start      time.Duration `json:"start_ns"`
	End        time.Duration `json:"end_ns"`
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

// EventOp is one event the domain raised, with the ID the unit of work stamped on it:
// "e<worker>-<seq>", from the worker's own sequence.
type EventOp struct {
	ID          string        `json:"id"`
	Order       string        `json:"order"` // the order whose unit of work raised it
	Worker      int           `json:"worker"`
	State       EventState    `json:"state"`
	CommittedAt time.Duration `json:"committed_ns"`
}

// SendOp is one call to the mailer, recorded by the goroutine that made it.
type SendOp struct {
	Event string        `json:"event"` // the ID of the event that caused the mail
	Actor string        `json:"actor"` // "w3" worker, "h1" async handler, "r0" outbox relay sender
	At    time.Duration `json:"at_ns"` // when Send returned
	Took  time.Duration `json:"took_ns"`
	Err   bool          `json:"error,omitempty"`
}

// Mail is one mail the mail server (the fake mailer) accepted, in delivery order.
type Mail struct {
	Event string `json:"event"`
	To    string `json:"to"`
	Body  string `json:"body"`
}

// BatchState is a batch as the store holds it at the end of a run.
type BatchState struct {
	Ref       string
	SKU       string
	Purchased int
	Lines     []domain.OrderLine
}

// Totals is what the clients saw allocated, counted as they went.
type Totals struct {
	Orders        int64 // orders that came back allocated
	Qty           int64 // their quantities summed
	UnknownOrders int64 // orders whose client crashed before it learned the outcome
	UnknownQty    int64
}

// Promise is what a strategy guarantees about mails when nothing fails.
type Promise struct {
	Delivered   bool // every committed event that was not recorded discarded gets a mail
	NoDuplicate bool // no event gets two mails
}

// History is what a run observed from outside the code under test: every order (when recorded),
// every event raised, every send, every mail accepted, and the store at the end. Check judges it.
type History struct {
	Orders  []OrderOp // nil unless Config.Record
	Events  []EventOp
	Sends   []SendOp
	Mails   []Mail
	Batches []BatchState
	Clients Totals
	Promise Promise
	// Drained is false when the run stopped before every committed event had its chance to be
	// delivered (interrupted); undelivered events then count as pending, not missing.
	Drained bool
}

// Digest hashes the history's outcomes (not its timings) in a canonical order, so two runs that
// did the same thing have the same digest whatever the interleaving of their goroutines.
func (h *History) Digest() string {
	d := sha256.New()
	var n [8]byte
	put := func(fields ...string) {
		for _, f := range fields {
			binary.LittleEndian.PutUint64(n[:], uint64(len(f)))
			d.Write(n[:])
			d.Write([]byte(f))
		}
	}
	orders := slices.Clone(h.Orders)
	slices.SortFunc(orders, func(a, b OrderOp) int { return compareIDs(a.ID, b.ID) })
	for _, o := range orders {
		put("order", o.ID, o.SKU, strconv.Itoa(o.Qty), o.Outcome.String(), o.Batch, strconv.FormatBool(o.PublishErr))
	}
	events := slices.Clone(h.Events)
	slices.SortFunc(events, func(a, b EventOp) int { return compareIDs(a.ID, b.ID) })
	for _, e := range events {
		put("event", e.ID, e.Order, e.State.String())
	}
	mails := slices.Clone(h.Mails)
	slices.SortStableFunc(mails, func(a, b Mail) int { return compareIDs(a.Event, b.Event) })
	for _, m := range mails {
		put("mail", m.Event, m.To, m.Body)
	}
	for _, b := range h.Batches {
		put("batch", b.Ref, b.SKU, strconv.Itoa(b.Purchased))
		for _, l := range b.Lines {
			put(l.OrderID, l.SKU, strconv.Itoa(l.Qty))
		}
	}
	return hex.EncodeToString(d.Sum(nil)[:12])
}

// compareIDs orders "x<a>-<b>" IDs by their numbers, so that o2-10 comes after o2-9.
func compareIDs(a, b string) int {
	sa, qa, oka := splitID(a)
	sb, qb, okb := splitID(b)
	if oka && okb {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(sa, sb), cmp.Compare(qa, qb))
	}
	return strings.Compare(a, b)
}

// splitID parses "<letter><stream>-<seq>" as the simulator makes order and event IDs.
func splitID(id string) (stream, seq int, ok bool) {
	if len(id) < 4 {
		return 0, 0, false
	}
	a, b, found := strings.Cut(id[1:], "-")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.Atoi(a)
	q, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || s < 0 || q < 1 {
		return 0, 0, false
	}
	return s, q, true
}
