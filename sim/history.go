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
	// (Config.ClientRetry); Outcome is what the last attempt saw.
	Resent int `json:"resent,omitempty"`
	// Bad is the defect of an invalid order (Config.BadInput): what was sent is not SKU and Qty.
	Bad Defect `json:"bad,omitempty"`
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

func kindOf(e domain.Event) EventKind {
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
// (Config.QuantityChanges) takes its IDs from that actor's stream, counted on from
// Config.Workers, and names it in Actor.
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
	Event   string        `json:"event"` // the ID of the event that caused the mail
	Actor   string        `json:"actor"` // "w3" worker, "h1" async handler, "r0" outbox relay sender
	At      time.Duration `json:"at_ns"` // when Send returned
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

// BadBatch is one invalid batch the run tried to add (Config.BadInput), and what came back.
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
	Failed        int64 // orders that came back failed: retries exhausted, or another error
}

// History is what a run observed from outside the code under test: every order (when recorded),
// every event raised, every send, every mail and publication accepted, every crash, and the store
// at the end. Check judges it and Account counts it.
type History struct {
	Orders []OrderOp // nil unless Config.Record
	Bad    []OrderOp // the invalid orders sent (Config.BadInput), always recorded
	// Reallocations are the Allocate commands Deallocated events sent, with their outcomes
	// (Config.QuantityChanges): a deallocated order's last word is its reallocation, not its client's.
	Reallocations []Reallocation
	Events        []EventOp
	Sends         []SendOp
	Mails         []Mail
	Published     []Publication
	DedupHits     []string // the event IDs of the repeats the mailer recognised, in order
	Crashes       []CrashOp
	Batches       []BatchState
	Products      []ProductState
	// BadBatches are the invalid batches the run tried to add before the first order.
	BadBatches []BadBatch
	Clients    Totals
	// Promise is what the run is held to: the strategy's promise and any the user required.
	Promise Promise
	// Drained is false when the run stopped before every committed event had its chance to be
	// delivered (interrupted); undelivered events then count as pending, not lost.
	Drained bool
	// FaultsEnd is when the fault phase ended and the liveness phase (no faults, drain) began.
	FaultsEnd time.Duration
	// StillHeld is how many events the process still held when the run ended (outbox rows not
	// marked done, events in the async queue): none once a run drained.
	StillHeld int
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
		put("order", o.ID, o.SKU, strconv.Itoa(o.Qty), o.Outcome.String(), o.Batch, strconv.FormatBool(o.PublishErr),
			strconv.Itoa(o.Resent), o.Bad.String())
	}
	events := slices.Clone(h.Events)
	slices.SortFunc(events, func(a, b EventOp) int { return compareIDs(a.ID, b.ID) })
	for _, e := range events {
		put("event", e.ID, e.Order, e.State.String(), e.Kind.String(), strconv.FormatBool(e.Unknown))
	}
	for _, c := range h.Crashes {
		put("crash", c.Point.String(), c.Actor, strings.Join(c.Carried, " "), strings.Join(c.InFlight, " "))
	}
	mails := slices.Clone(h.Mails)
	slices.SortStableFunc(mails, func(a, b Mail) int { return compareIDs(a.Event, b.Event) })
	for _, m := range mails {
		put("mail", m.Event, m.To, m.Body)
	}
	// Publications as a set: the broker does not de-duplicate, and how often a relay that
	// restarts beside the worker publishes an event again is the scheduler's doing (the
	// accounting counts it).
	published := slices.Clone(h.Published)
	slices.SortStableFunc(published, func(a, b Publication) int { return compareIDs(a.Event, b.Event) })
	for i, p := range published {
		if i == 0 || p != published[i-1] {
			put("published", p.Event, p.Channel)
		}
	}
	for _, p := range h.Products {
		put("product", p.SKU, strconv.Itoa(p.Version))
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
