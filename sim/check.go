package sim

import "fmt"

// Invariant is one property of a run's history, checked after the run.
type Invariant struct {
	Name       string   `json:"name"`
	OK         bool     `json:"ok"`
	Violations int      `json:"violations"`
	Examples   []string `json:"examples,omitempty"` // the first few violations
}

// Invariant names, as they appear in reports.
const (
	InvNoOverAllocation = "no batch over-allocated"
	InvAllocatedOnce    = "each order allocated at most once"
	InvStoreMatches     = "store allocation equals allocated orders"
	InvOneMailPerEvent  = "every OutOfStock event has exactly one mail"
)

const maxExamples = 5

type verdict struct{ Invariant }

func newVerdict(name string) *verdict { return &verdict{Invariant{Name: name, OK: true}} }

func (v *verdict) fail(format string, args ...any) {
	v.OK = false
	v.Violations++
	if len(v.Examples) < maxExamples {
		v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
	}
}

// Check judges a history against the simulator's invariants and returns one Invariant each, in a
// fixed order. It trusts nothing the code under test counted: only what clients saw, what the
// mailer accepted and what the store holds.
//
// The mail invariant follows h.Promise: a strategy that promises delivery must mail every
// committed event it did not record as discarded (once the run drained), and one that promises
// no duplicates must not mail any event twice. A mail for an event that never committed is always
// a violation.
func Check(h *History) []Invariant {
	over, once, matches := newVerdict(InvNoOverAllocation), newVerdict(InvAllocatedOnce), newVerdict(InvStoreMatches)
	held := newIDIndex() // order ID -> lines holding it
	var lines, qty int64
	var client map[string]*OrderOp
	if h.Orders != nil {
		client = make(map[string]*OrderOp, len(h.Orders))
		for i := range h.Orders {
			client[h.Orders[i].ID+"\x00"+h.Orders[i].SKU] = &h.Orders[i]
		}
	}
	for _, b := range h.Batches {
		total := 0
		for _, l := range b.Lines {
			total += l.Qty
			lines++
			qty += int64(l.Qty)
			if l.SKU != b.SKU {
				matches.fail("batch %s of %s holds order %s of sku %s", b.Ref, b.SKU, l.OrderID, l.SKU)
			}
			if n := held.add(l.OrderID, 1); n == 2 {
				once.fail("order %s (%s) is held more than once, last in batch %s", l.OrderID, l.SKU, b.Ref)
			}
			if client == nil {
				continue
			}
			switch o := client[l.OrderID+"\x00"+l.SKU]; {
			case o == nil:
				matches.fail("batch %s holds order %s that no client sent", b.Ref, l.OrderID)
			case o.Outcome == Unknown:
				// the client crashed: either way is consistent
			case o.Outcome != Allocated:
				matches.fail("batch %s holds order %s that its client saw %s", b.Ref, l.OrderID, o.Outcome)
			case o.Qty != l.Qty || o.Batch != b.Ref:
				matches.fail("order %s: client saw %d in %s, store holds %d in %s", l.OrderID, o.Qty, o.Batch, l.Qty, b.Ref)
			}
		}
		if total > b.Purchased {
			over.fail("batch %s of %s: %d allocated of %d", b.Ref, b.SKU, total, b.Purchased)
		}
	}
	if client != nil {
		for i := range h.Orders {
			if o := &h.Orders[i]; o.Outcome == Allocated && held.get(o.ID) == 0 {
				matches.fail("order %s came back allocated to %s but no batch holds it", o.ID, o.Batch)
			}
		}
	}
	// Orders whose outcome the client never learned may or may not be held.
	c := h.Clients
	if lines < c.Orders || lines > c.Orders+c.UnknownOrders || qty < c.Qty || qty > c.Qty+c.UnknownQty {
		matches.fail("store holds %d lines, %d units; clients saw %d orders, %d units allocated (and %d orders, %d units unknown)",
			lines, qty, c.Orders, c.Qty, c.UnknownOrders, c.UnknownQty)
	}
	return []Invariant{over.Invariant, once.Invariant, matches.Invariant, checkMails(h).Invariant}
}

func checkMails(h *History) *verdict {
	v := newVerdict(InvOneMailPerEvent)
	events := newIDIndex() // event ID -> 1 + index in h.Events
	for i, e := range h.Events {
		events.add(e.ID, i+1)
	}
	mails := make([]int, len(h.Events))
	for _, m := range h.Mails {
		i := events.get(m.Event) - 1
		if i < 0 {
			v.fail("mail %q for event %s that was never raised", m.Body, m.Event)
			continue
		}
		mails[i]++
	}
	for i, e := range h.Events {
		switch n := mails[i]; {
		case n > 0 && e.State == RolledBack:
			v.fail("event %s of order %s was rolled back but mailed %d times", e.ID, e.Order, n)
		case n > 0 && e.State == Discarded:
			v.fail("event %s of order %s was discarded but mailed %d times", e.ID, e.Order, n)
		case n > 1 && h.Promise.NoDuplicate:
			v.fail("event %s of order %s mailed %d times", e.ID, e.Order, n)
		case n == 0 && h.Promise.Delivered && h.Drained && (e.State == Committed || e.State == Abandoned):
			v.fail("event %s of order %s was committed and never mailed", e.ID, e.Order)
		}
	}
	return v
}

// idIndex counts by the simulator's IDs ("o<stream>-<seq>", "e<worker>-<seq>") in dense slices,
// so checking a million orders costs a few bytes each rather than a map entry; other IDs fall back
// to a map. The simulator never reuses an order ID across skus, so an ID alone names an order.
type idIndex struct {
	dense  map[byte][][]int
	sparse map[string]int
}

func newIDIndex() *idIndex { return &idIndex{dense: map[byte][][]int{}, sparse: map[string]int{}} }

func (x *idIndex) slot(id string, grow bool) *int {
	stream, seq, ok := splitID(id)
	if !ok || stream > 1<<20 || seq > 1<<31 {
		return nil
	}
	streams := x.dense[id[0]]
	if stream >= len(streams) {
		if !grow {
			return nil
		}
		streams = append(streams, make([][]int, stream+1-len(streams))...)
		x.dense[id[0]] = streams
	}
	s := streams[stream]
	if seq > len(s) {
		if !grow {
			return nil
		}
		s = append(s, make([]int, max(seq-len(s), len(s)))...)
		streams[stream] = s
	}
	return &s[seq-1]
}

// add adds delta to the count of id and returns the new count.
func (x *idIndex) add(id string, delta int) int {
	if p := x.slot(id, true); p != nil {
		*p += delta
		return *p
	}
	x.sparse[id] += delta
	return x.sparse[id]
}

func (x *idIndex) get(id string) int {
	if p := x.slot(id, false); p != nil {
		return *p
	}
	return x.sparse[id]
}
