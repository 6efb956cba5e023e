package sim

import (
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/stockbus/stockbus/sim/history"
)

// countEvents fills the event counts from the accounting, and the delivery lag, the crashes and
// the handler retries from the history.
func (r *run) countEvents(rep *Report, h *History) {
	c, a := &rep.Counts, rep.Accounting
	c.Crashes = int64(len(h.Crashes))
	rep.Faults.Crashes = CountCrashes(h.Crashes)
	c.EventsCommitted = int64(a.Committed)
	c.EventsDelivered = int64(a.Delivered)
	c.EventsDiscarded = int64(a.Discarded)
	c.EventsLost = int64(a.Lost)
	c.EventsPending = int64(a.Pending)
	c.Mails = int64(len(h.Mails))
	index := history.IndexEvents(h.Events)
	for _, e := range h.Events {
		c.EventsRaised++
		switch e.State {
		case RolledBack:
			c.EventsRolledBack++
		case Abandoned:
			c.EventsAbandoned++
		}
	}
	lag, send := NewHistogram(), NewHistogram()
	rep.Faults.TimeoutsDelivered += int64(r.resolvedTimeouts)
	sent := make([]bool, len(h.Events))
	failed := map[string]bool{} // of the actor whose sends are being read
	for i, s := range h.Sends {
		if i == 0 || s.Actor != h.Sends[i-1].Actor {
			clear(failed) // h.Sends is each actor's log in turn
		}
		if len(failed) > 0 && failed[s.Event] {
			rep.Faults.HandlerRetries++
			delete(failed, s.Event)
		}
		if s.Err {
			failed[s.Event] = true
		}
		if s.Publish {
			c.Publications++
			continue
		}
		c.Sends++
		send.Record(s.Took)
		if s.Err {
			c.SendErrors++
		}
		if !s.Accepted {
			continue
		}
		k := index.Get(s.Event) - 1
		if k < 0 || sent[k] {
			continue
		}
		sent[k] = true
		if e := h.Events[k]; e.State != RolledBack && int64(e.CommittedAt) >= r.load.Window.Start.Load() {
			lag.Record(s.At - e.CommittedAt)
		}
	}
	rep.DeliveryLag = lag.Dist()
	rep.Mailer.Send = send.Dist()
}

func (r *run) allActors() []*actor {
	var as []*actor
	for _, w := range r.workers {
		as = append(as, &w.actor)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(as, r.actors...)
}

// history assembles what the run observed. It is called once every goroutine has returned.
//
// The IDs are spelled out here, once, from the logs' numbers (see eventRec): into a few large
// blocks of text (idText), each ID a substring of one, rather than one string each; a send's
// cause, when the run minted it, is the very string of its event's EventOp.
func (r *run) history(drained bool) *History {
	h := &History{Promise: r.strategy.Promise().Or(r.cfg.Require), Drained: drained, FaultsEnd: r.faultsEnd,
		Crashes: r.life.crashes, BadBatches: r.badBatches, DedupHits: r.mailer.DedupHits()}
	actors := r.allActors() // workers first, then the actors of the strategy
	var events, sends int
	for _, a := range actors {
		events += len(a.events)
		sends += len(a.sends)
	}
	h.Events = make([]EventOp, 0, events)
	var ids idText
	var spans []span // stream -> where its events are in h.Events
	for _, a := range actors {
		worker, name := a.stream, ""
		if a.w == nil {
			worker, name = -1, a.name
		}
		if a.stream >= 0 && len(a.events) > 0 {
			for len(spans) <= a.stream {
				spans = append(spans, span{})
			}
			spans[a.stream] = span{first: len(h.Events), n: len(a.events)}
		}
		var order string
		orderStream, orderSeq := -1, int32(0)
		var qty map[int]int32
		if a.chain != nil {
			qty = a.chain.qty
		}
		for i := range a.events {
			e := &a.events[i]
			if int(e.orderStream) != orderStream || e.orderSeq != orderSeq { // an order's retries raise in a row
				orderStream, orderSeq, order = int(e.orderStream), e.orderSeq, ids.id('o', int(e.orderStream), int(e.orderSeq))
			}
			h.Events = append(h.Events, EventOp{ID: ids.id('e', a.stream, i+1), Order: order, Worker: worker,
				Actor: name, Qty: int(qty[i]), State: e.state, Kind: e.kind(), Unknown: e.unknown(), CommittedAt: e.committedAt})
		}
		if a.chain != nil {
			h.Reallocations = append(h.Reallocations, a.chain.reallocs...)
		}
	}
	r.addOrders(h)
	h.Sends = make([]SendOp, 0, sends)
	var unknown []bool // of h.Sends, when any is
	for _, a := range actors {
		took := a.took
		for i, s := range a.sends {
			id, ok := a.foreign[i]
			if !ok {
				id = mintedID(h.Events, spans, s.stream(), s.seq, &ids)
			}
			op := SendOp{Event: id, Actor: a.name, At: s.at, Err: s.has(sendErr), Timeout: s.has(sendTimeout),
				Accepted: s.has(sendAccepted), Publish: s.has(sendPublish)}
			if s.has(sendTimed) {
				op.Took, took = took[0], took[1:]
			}
			h.Sends = append(h.Sends, op)
			if s.has(sendUnknown) && unknown == nil {
				unknown = make([]bool, sends)
			}
			if unknown != nil {
				unknown[len(h.Sends)-1] = s.has(sendUnknown)
			}
		}
	}
	h.Mails = r.mailer.Mails()
	if unknown != nil {
		r.resolvedTimeouts = resolveUnknown(h, unknown)
	}
	h.Published = r.broker.held
	for _, sku := range r.store.SKUs() {
		p, _ := r.store.Product(sku)
		h.Products = append(h.Products, ProductState{SKU: sku, Version: p.VersionNumber})
		for _, b := range p.Batches {
			h.Batches = append(h.Batches, BatchState{Ref: b.Reference, SKU: b.SKU, Purchased: b.PurchasedQuantity(), Lines: b.Lines()})
		}
	}
	h.StillHeld = r.strategy.Stats().Pending
	return h
}

// span is where a stream's events are in the history's: n of them from first.
type span struct{ first, n int }

// mintedID is the ID of event seq of stream: its EventOp's, when the history has it (each
// stream's events are its actor's log, in order, so event seq is the seq-th of its span), or
// else spelled out anew.
func mintedID(events []EventOp, spans []span, stream, seq int32, ids *idText) string {
	if s := int(stream); s < len(spans) && seq >= 1 && int(seq) <= spans[s].n {
		return events[spans[s].first+int(seq)-1].ID
	}
	return ids.id('e', int(stream), int(seq))
}

// addOrders adds the clients' records and totals to h.
func (r *run) addOrders(h *History) {
	n := len(r.sched.ops)
	for _, w := range r.workers {
		n += len(w.orders)
	}
	if r.cfg.Record {
		h.Orders = make([]OrderOp, 0, n)
	}
	for _, w := range r.workers {
		h.Bad = append(h.Bad, w.bad...)
		h.Clients.Orders += w.totals.Orders
		h.Clients.Qty += w.totals.Qty
		h.Clients.UnknownOrders += w.totals.UnknownOrders
		h.Clients.UnknownQty += w.totals.UnknownQty
		h.Clients.Failed += w.counts.Failed
		if r.cfg.Record {
			h.Orders = append(h.Orders, w.orders...)
		}
	}
	if r.cfg.Record {
		h.Orders = append(h.Orders, r.sched.ops...)
	}
}

// idText spells out "<letter><stream>-<seq>" IDs into blocks of text and hands out each one as a
// substring of its block: one allocation per block instead of one per ID. A block is never
// written again once its text is taken, so the substrings stay valid.
type idText struct {
	b strings.Builder
}

// idBlock is the size of idText's blocks: big enough that a million IDs take a few hundred.
const idBlock = 32 << 10

func (t *idText) id(letter byte, stream, seq int) string {
	const longest = 1 + 20 + 1 + 20
	if t.b.Cap()-t.b.Len() < longest {
		t.b = strings.Builder{}
		t.b.Grow(idBlock)
	}
	start := t.b.Len()
	var buf [longest]byte
	n := append(buf[:0], letter)
	n = strconv.AppendInt(n, int64(stream), 10)
	n = append(n, '-')
	n = strconv.AppendInt(n, int64(seq), 10)
	t.b.Write(n)
	return t.b.String()[start:]
}

func (r *run) historyBytes() uint64 {
	var n uintptr
	for _, w := range r.workers {
		n += uintptr(cap(w.events))*unsafe.Sizeof(eventRec{}) + uintptr(cap(w.orders))*unsafe.Sizeof(OrderOp{}) +
			uintptr(cap(w.sends))*unsafe.Sizeof(sendRec{}) + uintptr(cap(w.took))*unsafe.Sizeof(time.Duration(0))
	}
	for _, a := range r.allActors() {
		if a.w == nil { // a reallocation's events too (Config.QuantityChanges)
			n += uintptr(cap(a.sends))*unsafe.Sizeof(sendRec{}) + uintptr(cap(a.events))*unsafe.Sizeof(eventRec{}) +
				uintptr(cap(a.took))*unsafe.Sizeof(time.Duration(0))
		}
	}
	return uint64(n)
}
