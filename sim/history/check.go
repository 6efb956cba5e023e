package history

import (
	"fmt"

	"github.com/stockbus/stockbus/sim/workload"
)

// Invariant is one property of a run's history, checked after the run.
type Invariant struct {
	Name       string   `json:"name"`
	OK         bool     `json:"ok"`
	Violations int      `json:"violations"`
	Examples   []string `json:"examples,omitempty"` // the first few violations
	// Note says why a promise was not checked (the strategy does not make it, or a fault fired).
	Note string `json:"note,omitempty"`
}

// Invariant names, as they appear in reports, in Check's order.
const (
	InvNoOverAllocation  = "no batch over-allocated"
	InvAllocatedOnce     = "each order allocated at most once"
	InvStoreMatches      = "store allocation equals allocated orders"
	InvNoUnexpected      = "no mail for an event that never committed"
	InvNoDuplicate       = "no event mailed twice (at-most-once)"
	InvNoLoss            = "no committed event lost"
	InvNoFalseOutOfStock = "no out-of-stock mail for an allocated order"
	InvBadInput          = "bad input changed nothing"
	// InvNoDuplicatePublish comes last, after InvBadInput, so that earlier indexes stay put.
	InvNoDuplicatePublish = "no event published twice (at-most-once)"
	InvNoFailures         = "no order failed (-require no-failures)"
	InvModel              = "throughput within 10% of the model (-require model)"
)

const maxExamples = 5

// Verdict builds one Invariant: OK until it fails, with the first few violations as examples.
type Verdict struct{ Invariant }

// NewVerdict returns a holding verdict on the invariant name.
func NewVerdict(name string) *Verdict { return &Verdict{Invariant{Name: name, OK: true}} }

// Fail records a violation, described by format and args.
func (v *Verdict) Fail(format string, args ...any) {
	v.OK = false
	v.Violations++
	if len(v.Examples) < maxExamples {
		v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
	}
}

// Check judges a history against the simulator's invariants and returns one Invariant each, in a
// fixed order. It trusts nothing the code under test counted: only what clients saw, what the
// mail server and the broker accepted and what the store holds.
//
// The delivery invariants follow h.Promise. A mail (or publication) for an event that never
// committed is always a violation. An event mailed twice is one when the promise says at most
// once. A committed event that was never delivered, once the run drained, is one when the
// promise says at least once, or when it says delivered and no fault fired (no crash, no failed
// or timed-out send); events a full async queue dropped on purpose are not lost.
func Check(h *History) []Invariant {
	over, once, matches := NewVerdict(InvNoOverAllocation), NewVerdict(InvAllocatedOnce), NewVerdict(InvStoreMatches)
	held := newIDIndex() // order ID -> lines holding it
	var lines, qty int64
	var client map[string]*OrderOp
	if h.Orders != nil {
		client = make(map[string]*OrderOp, len(h.Orders))
		for i := range h.Orders {
			client[h.Orders[i].ID+"\x00"+h.Orders[i].SKU] = &h.Orders[i]
		}
	}
	moved := movedOrders(h)
	for _, b := range h.Batches {
		total := 0
		for _, l := range b.Lines {
			total += l.Qty
			lines++
			qty += int64(l.Qty)
			if l.SKU != b.SKU {
				matches.Fail("batch %s of %s holds order %s of sku %s", b.Ref, b.SKU, l.OrderID, l.SKU)
			}
			if n := held.add(l.OrderID, 1); n == 2 {
				once.Fail("order %s (%s) is held more than once, last in batch %s", l.OrderID, l.SKU, b.Ref)
			}
			if m := moved[l.OrderID]; m != nil {
				if !m.batches[b.Ref] {
					matches.Fail("batch %s holds deallocated order %s, which no reallocation put there", b.Ref, l.OrderID)
				}
				continue
			}
			if client == nil {
				continue
			}
			switch o := client[l.OrderID+"\x00"+l.SKU]; {
			case o == nil:
				matches.Fail("batch %s holds order %s that no client sent", b.Ref, l.OrderID)
			case o.Outcome == Unknown:
				// the client crashed: either way is consistent
			case o.Outcome != Allocated:
				matches.Fail("batch %s holds order %s that its client saw %s", b.Ref, l.OrderID, o.Outcome)
			case o.Qty != l.Qty || o.Batch != b.Ref:
				matches.Fail("order %s: client saw %d in %s, store holds %d in %s", l.OrderID, o.Qty, o.Batch, l.Qty, b.Ref)
			}
		}
		if total > b.Purchased {
			over.Fail("batch %s of %s: %d allocated of %d", b.Ref, b.SKU, total, b.Purchased)
		}
	}
	if client != nil {
		for i := range h.Orders {
			if o := &h.Orders[i]; o.Outcome == Allocated && held.get(o.ID) == 0 && moved[o.ID] == nil {
				matches.Fail("order %s came back allocated to %s but no batch holds it", o.ID, o.Batch)
			}
		}
	}
	// Orders whose outcome the client never learned may or may not be held.
	c := h.Clients
	for id, m := range moved { // their last outcome is in the store: held, or reallocated out of stock
		switch held.get(id) {
		case 0:
			if !m.dropped {
				matches.Fail("deallocated order %s is held nowhere, but no reallocation of it failed", id)
			}
			c.Orders--
			c.Qty -= int64(m.qty)
		}
	}
	if lines < c.Orders || lines > c.Orders+c.UnknownOrders || qty < c.Qty || qty > c.Qty+c.UnknownQty {
		matches.Fail("store holds %d lines, %d units; clients saw %d orders, %d units allocated (and %d orders, %d units unknown)",
			lines, qty, c.Orders, c.Qty, c.UnknownOrders, c.UnknownQty)
	}
	unexpected, dup, dupPublished, lost, falseOOS := checkDeliveries(h, held)
	return []Invariant{over.Invariant, once.Invariant, matches.Invariant, unexpected.Invariant, dup.Invariant,
		lost.Invariant, falseOOS.Invariant, checkBadInput(h).Invariant, dupPublished.Invariant, checkFailures(h).Invariant}
}

// checkFailures holds the run to no failed order when it was required (-require no-failures).
func checkFailures(h *History) *Verdict {
	v := NewVerdict(InvNoFailures)
	if !h.Promise.NoFailures {
		v.Note = "not required"
		return v
	}
	listed := int64(0)
	for _, o := range h.Orders {
		if o.Outcome == Exhausted || o.Outcome == Failed {
			v.Fail("order %s came back %s", o.ID, o.Outcome)
			listed++
		}
	}
	for ; listed < h.Clients.Failed; listed++ {
		v.Fail("an order failed (-record lists them)")
	}
	return v
}

func checkDeliveries(h *History, held *idIndex) (unexpected, dup, dupPublished, lost, falseOOS *Verdict) {
	unexpected, dup, lost = NewVerdict(InvNoUnexpected), NewVerdict(InvNoDuplicate), NewVerdict(InvNoLoss)
	dupPublished, falseOOS = NewVerdict(InvNoDuplicatePublish), NewVerdict(InvNoFalseOutOfStock)
	events := IndexEvents(h.Events)
	mails, published := make([]int, len(h.Events)), make([]int, len(h.Events))
	for _, m := range h.Mails {
		i := events.Get(m.Event) - 1
		if i < 0 {
			unexpected.Fail("mail %q for event %s that was never raised", m.Body, m.Event)
			continue
		}
		mails[i]++
	}
	for _, p := range h.Published {
		i := events.Get(p.Event) - 1
		if i < 0 {
			unexpected.Fail("publication on %s of event %s that was never raised", p.Channel, p.Event)
			continue
		}
		published[i]++
	}
	reallocated := map[string]bool{}
	for _, re := range h.Reallocations {
		reallocated[re.Cause] = true
	}
	rerun, excused := rerunOutOfStock(h), 0
	faulted := len(h.Crashes) > 0
	for _, s := range h.Sends {
		faulted = faulted || s.Err
	}
	checkLoss := h.Drained && (h.Promise.NoLoss || h.Promise.Delivered && !faulted)
	if !h.Promise.NoDuplicate {
		dup.Note = "not promised"
	}
	if !h.Promise.NoDuplicatePublish {
		dupPublished.Note = "not promised"
	}
	switch {
	case !h.Drained:
		lost.Note = "the run was interrupted: undelivered events are pending"
	case !checkLoss && h.Promise.Delivered:
		lost.Note = "faults fired and the strategy does not promise at-least-once"
	case !checkLoss:
		lost.Note = "not promised"
	}
	for i, e := range h.Events {
		n := mails[i] + published[i]
		switch {
		case n > 0 && e.State == RolledBack:
			unexpected.Fail("event %s of order %s was rolled back but delivered %d times", e.ID, e.Order, n)
			continue
		case n > 0 && e.State == Discarded:
			unexpected.Fail("event %s of order %s was discarded but delivered %d times", e.ID, e.Order, n)
			continue
		}
		if mails[i] > 1 && h.Promise.NoDuplicate {
			dup.Fail("event %s of order %s mailed %d times", e.ID, e.Order, mails[i])
		}
		if published[i] > 1 && h.Promise.NoDuplicatePublish {
			dupPublished.Fail("event %s (%s) of order %s published %d times", e.ID, e.Kind, e.Order, published[i])
		}
		excused += judgeOutOfStock(falseOOS, e, mails[i], held, rerun)
		delivered := mails[i] > 0
		switch e.Kind {
		case KindOutOfStock:
		case KindDeallocated: // delivered to its handler: the reallocation it sent
			delivered = reallocated[e.ID]
		default:
			delivered = published[i] > 0
		}
		if checkLoss && !delivered && (e.State == Committed || e.State == Abandoned) {
			lost.Fail("event %s (%s) of order %s was committed and never delivered", e.ID, e.Kind, e.Order)
		}
	}
	if excused > 0 && falseOOS.OK {
		falseOOS.Note = fmt.Sprintf("%d out-of-stock mails for orders the store holds came from reallocations run again when their Deallocated was sent again (at-least-once; the reallocation is not idempotent)", excused)
	}
	return unexpected, dup, dupPublished, lost, falseOOS
}

// judgeOutOfStock fails v when e is an OutOfStock event mailed for an order the store holds,
// unless a reallocation run again explains it (rerun): then it returns the mails it excused.
func judgeOutOfStock(v *Verdict, e EventOp, mails int, held *idIndex, rerun map[string]bool) (excused int) {
	if mails == 0 || e.Kind != KindOutOfStock || held.get(e.Order) == 0 {
		return 0
	}
	if rerun[e.Order] {
		return mails
	}
	v.Fail("event %s: out-of-stock mail for order %s, which the store holds", e.ID, e.Order)
	return 0
}

// checkBadInput checks that every invalid order was rejected with nothing committed for it, that
// no batch holds an invalid line, and that every invalid batch was refused with nothing stored.
func checkBadInput(h *History) *Verdict {
	v := NewVerdict(InvBadInput)
	if len(h.Bad) == 0 && len(h.BadBatches) == 0 {
		v.Note = "no bad input sent"
	}
	bad := map[string]workload.Defect{}
	for _, o := range h.Bad {
		bad[o.ID] = o.Bad
		if o.Outcome != Rejected && o.Outcome != Unknown {
			v.Fail("order %s (%s) came back %s, want rejected", o.ID, o.Bad, o.Outcome)
		}
	}
	for _, e := range h.Events {
		if d, ok := bad[e.Order]; ok {
			v.Fail("order %s (%s) raised event %s", e.Order, d, e.ID)
		}
	}
	for _, b := range h.Batches {
		for _, l := range b.Lines {
			if d, ok := bad[l.OrderID]; ok {
				v.Fail("batch %s holds order %s (%s)", b.Ref, l.OrderID, d)
			} else if err := l.Validate(); err != nil {
				v.Fail("batch %s holds an invalid line %+v: %v", b.Ref, l, err)
			}
		}
	}
	for _, b := range h.BadBatches {
		switch {
		case b.Err == "":
			v.Fail("bad batch (%s) was accepted", b.What)
		case b.Changed:
			v.Fail("bad batch (%s) was refused (%s) but changed the store", b.What, b.Err)
		}
	}
	return v
}

// idIndex counts by the simulator's IDs ("o<stream>-<seq>", "e<worker>-<seq>") in dense slices,
// so checking a million orders costs a few bytes each rather than a map entry; other IDs fall back
// to a map. The simulator never reuses an order ID across skus, so an ID alone names an order.
type idIndex struct {
	dense  map[byte][][]int32
	sparse map[string]int
}

func newIDIndex() *idIndex { return &idIndex{dense: map[byte][][]int32{}, sparse: map[string]int{}} }

func (x *idIndex) slot(id string, grow bool) *int32 {
	stream, seq, ok := SplitID(id)
	if !ok || stream > 1<<20 || seq > 1<<31 {
		return nil
	}
	streams := x.dense[id[0]]
	if stream >= len(streams) {
		if !grow {
			return nil
		}
		streams = append(streams, make([][]int32, stream+1-len(streams))...)
		x.dense[id[0]] = streams
	}
	s := streams[stream]
	if seq > len(s) {
		if !grow {
			return nil
		}
		s = append(s, make([]int32, max(seq-len(s), len(s)))...)
		streams[stream] = s
	}
	return &s[seq-1]
}

// add adds delta to the count of id and returns the new count.
func (x *idIndex) add(id string, delta int) int {
	if p := x.slot(id, true); p != nil { // counts and positions of a run fit in 32 bits
		*p += int32(delta)
		return int(*p)
	}
	x.sparse[id] += delta
	return x.sparse[id]
}

func (x *idIndex) get(id string) int {
	if p := x.slot(id, false); p != nil {
		return int(*p)
	}
	return x.sparse[id]
}

// movedOrders returns the orders a quantity change deallocated: what their clients saw is stale.
// Their reallocations say where they may be now (any batch one of them reported) or that they may
// be in none: one found no stock (or failed), or a Deallocated of theirs that committed never
// reached its handler (lost in a crash, dropped by a full queue: the delivery invariants judge
// that, under the strategy's promise), so that the line was taken out and put nowhere.
func movedOrders(h *History) map[string]*movedOrder {
	moved := map[string]*movedOrder{}
	get := func(order string, qty int) *movedOrder {
		m := moved[order]
		if m == nil {
			m = &movedOrder{batches: map[string]bool{}, qty: qty}
			moved[order] = m
		}
		return m
	}
	handled := map[string]bool{} // the Deallocated events whose handler sent a reallocation
	for _, re := range h.Reallocations {
		m := get(re.Order, re.Qty)
		handled[re.Cause] = true
		if re.Outcome == Allocated {
			m.batches[re.Batch] = true
		} else {
			m.dropped = true
		}
	}
	for _, e := range h.Events {
		if e.Kind == KindDeallocated && e.State != RolledBack && !handled[e.ID] {
			get(e.Order, e.Qty).dropped = true
		}
	}
	return moved
}

// rerunOutOfStock returns the orders whose reallocation found no stock in a run of the handler
// of a Deallocated event that ran more than once (sent again: at-least-once). The reallocation
// is not idempotent, so a later run of it may allocate the order: its out-of-stock mail was true
// when sent, and follows from the re-delivery, not from a lost or invented event.
func rerunOutOfStock(h *History) map[string]bool {
	runs := map[string]int{} // Deallocated event ID -> how many times its handler reallocated
	for _, re := range h.Reallocations {
		runs[re.Cause]++
	}
	rerun := map[string]bool{}
	for _, re := range h.Reallocations {
		if runs[re.Cause] > 1 && re.Outcome == OutOfStock {
			rerun[re.Order] = true
		}
	}
	return rerun
}

// movedOrder is what the reallocations of one deallocated order said.
type movedOrder struct {
	batches map[string]bool // where reallocations put it
	dropped bool            // a reallocation found no stock (or failed)
	qty     int
}

// EventIndex finds events in a history by ID. When the events lie as the run assembles them,
// each stream's in a run of consecutive sequence numbers from 1, an ID's numbers say where its
// event is and nothing is built but a start per stream; any other history (one written by hand,
// with other IDs, or in another order) is indexed in an idIndex.
type EventIndex struct {
	events   []EventOp
	first    []int    // stream -> index in events of its event 1; -1: none
	fallback *idIndex // nil when first says where every event is
}

// IndexEvents indexes events by ID.
func IndexEvents(events []EventOp) *EventIndex {
	x := &EventIndex{events: events}
	var prevStream, prevSeq int32 = -1, 0
	for i, e := range events {
		stream, seq, ok := ParseEventID(e.ID)
		switch {
		case !ok:
		case seq == 1:
			for int(stream) >= len(x.first) {
				x.first = append(x.first, -1)
			}
			ok = x.first[stream] < 0
			x.first[stream] = i
		default:
			ok = stream == prevStream && seq == prevSeq+1
		}
		if !ok {
			x.first, x.fallback = nil, newIDIndex()
			for i, e := range events {
				x.fallback.add(e.ID, i+1)
			}
			return x
		}
		prevStream, prevSeq = stream, seq
	}
	return x
}

// Get returns 1 + the index in the events of the event id, or 0 when there is none.
func (x *EventIndex) Get(id string) int {
	if x.fallback != nil {
		return x.fallback.get(id)
	}
	stream, seq, ok := ParseEventID(id)
	if !ok || int(stream) >= len(x.first) || x.first[stream] < 0 {
		return 0
	}
	if i := x.first[stream] + int(seq) - 1; i < len(x.events) && x.events[i].ID == id {
		return i + 1
	}
	return 0
}
