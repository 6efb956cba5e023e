package sim

import (
	"slices"
	"unsafe"
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
	index := newIDIndex() // event ID -> 1 + position in h.Events
	for i, e := range h.Events {
		index.add(e.ID, i+1)
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
		if failed[s.Event] {
			rep.Faults.HandlerRetries++
		}
		failed[s.Event] = s.Err
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
		k := index.get(s.Event) - 1
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
func (r *run) history(drained bool) *History {
	h := &History{Promise: r.strategy.Promise().Or(r.cfg.Require), Drained: drained, FaultsEnd: r.faultsEnd,
		Crashes: r.life.crashes, BadBatches: r.badBatches, DedupHits: r.mailer.DedupHits()}
	for _, a := range r.allActors() { // workers first, then the actors of the strategy
		worker, name := a.stream, ""
		if a.w == nil {
			worker, name = -1, a.name
		}
		for i, e := range a.events {
			h.Events = append(h.Events, EventOp{ID: eventID(a.stream, i+1), Order: orderID(e.orderStream, e.orderSeq), Worker: worker,
				Actor: name, Qty: int(e.qty), State: e.state, Kind: e.kind, Unknown: e.unknown, CommittedAt: e.committedAt})
		}
		if a.chain != nil {
			h.Reallocations = append(h.Reallocations, a.chain.reallocs...)
		}
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
		if h.Orders == nil {
			h.Orders = []OrderOp{}
		}
	}
	var unknown []bool // of h.Sends
	for _, a := range r.allActors() {
		for i, s := range a.sends {
			id, ok := a.foreign[i]
			if !ok {
				id = eventID(int(s.worker), int(s.seq))
			}
			h.Sends = append(h.Sends, SendOp{Event: id, Actor: a.name, At: s.at, Took: s.took, Err: s.err, Timeout: s.timeout,
				Accepted: s.accepted, Publish: s.publish})
			unknown = append(unknown, s.unknown)
		}
	}
	h.Mails = r.mailer.Mails()
	if slices.Contains(unknown, true) {
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

func (r *run) historyBytes() uint64 {
	var n uintptr
	for _, w := range r.workers {
		n += uintptr(cap(w.events))*unsafe.Sizeof(eventRec{}) + uintptr(cap(w.orders))*unsafe.Sizeof(OrderOp{}) +
			uintptr(cap(w.sends))*unsafe.Sizeof(sendRec{})
	}
	for _, a := range r.allActors() {
		if a.w == nil { // a reallocation's events too (Config.QuantityChanges)
			n += uintptr(cap(a.sends))*unsafe.Sizeof(sendRec{}) + uintptr(cap(a.events))*unsafe.Sizeof(eventRec{})
		}
	}
	return uint64(n)
}
