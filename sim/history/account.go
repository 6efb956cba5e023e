package history

import (
	"slices"
	"time"
)

// Accounting is what became of the events of a run, counted Jepsen-style from its History alone:
// what the clients saw, what the mail server and the broker accepted, what the process held when
// it crashed. Nothing in it comes from counters inside the code under test.
//
// An OutOfStock event is delivered when the mail server accepted a mail for it; any other event
// (Allocated) when the broker accepted its publication, that is, when its handler completed.
type Accounting struct {
	Committed int `json:"committed"` // events committed
	Delivered int `json:"delivered"` // of them, delivered at least once
	Discarded int `json:"discarded"` // of them, dropped on purpose by a full async queue (not lost)
	// Lost are committed events, not discarded, never delivered once the run drained.
	Lost int `json:"lost"`
	// LostInCrash, LostSendFailed and LostOther split Lost by cause: held in memory only when the
	// process crashed; every send of it failed (or timed out undelivered); anything else.
	LostInCrash    int `json:"lost_in_crash"`
	LostSendFailed int `json:"lost_send_failed"`
	LostOther      int `json:"lost_other"`
	// Pending are undelivered events of a run that was interrupted before it drained: not lost.
	Pending int `json:"pending"`
	// Duplicated counts the surplus mails: mails beyond the first for one event, summed.
	Duplicated int `json:"duplicated"`
	// DuplicatedPublished counts the surplus publications the same way.
	DuplicatedPublished int `json:"duplicated_published"`
	// Resends counts the sends the mail server accepted for an event it had accepted before:
	// with de-duplication they are the dedup hits, without it the duplicates. (Repeated
	// publications are in DuplicatedPublished: the broker does not de-duplicate.)
	Resends int `json:"resends"`
	// Unexpected counts the mails and publications for events that never committed (rolled back,
	// discarded, or never raised).
	Unexpected int `json:"unexpected"`
	// Recovered counts the committed events of requests whose client never learned the outcome
	// (the process died under them) that were delivered all the same.
	Recovered int `json:"recovered"`
	// FalseOutOfStock counts the OutOfStock mails for orders that the store holds at the end.
	FalseOutOfStock int `json:"false_out_of_stock"`

	Liveness Liveness    `json:"liveness"`
	ByKind   []KindCount `json:"by_kind"` // per event type, in kind order
}

// Liveness is what the liveness phase found. When the faults stopped, PendingAtStart events were
// committed, not yet delivered, and still held by the process (in the outbox or the async
// queue): the drain then delivered Delivered of them, and StillPending were held when it ended.
// Events a crash or a failed send had already lost are not pending: nothing holds them.
type Liveness struct {
	FaultsEnd      time.Duration `json:"faults_end_ns"` // since the run's start
	PendingAtStart int           `json:"pending_at_start"`
	Delivered      int           `json:"delivered"`
	StillPending   int           `json:"still_pending"`
	Took           time.Duration `json:"took_ns"` // from the end of the faults to the last delivery in the phase
}

// KindCount is the accounting of one type of event.
type KindCount struct {
	Kind       EventKind `json:"kind"`
	Committed  int       `json:"committed"`
	Delivered  int       `json:"delivered"`
	Lost       int       `json:"lost"`
	Duplicated int       `json:"duplicated"`
}

// Kind returns the accounting of one kind of event (zero when the run committed none).
func (a Accounting) Kind(k EventKind) KindCount {
	for _, c := range a.ByKind {
		if c.Kind == k {
			return c
		}
	}
	return KindCount{Kind: k}
}

// Account counts what became of the history's events.
func Account(h *History) Accounting {
	var a Accounting
	t := tallyEvents(h, &a)
	kinds := map[EventKind]*KindCount{}
	var lastDelivery time.Duration
	for i, e := range h.Events {
		if d, ok := a.judgeEvent(h, t, i, e, kinds); ok {
			lastDelivery = max(lastDelivery, d)
		}
	}
	a.Liveness.FaultsEnd = h.FaultsEnd
	a.Liveness.StillPending = h.StillHeld
	a.Liveness.PendingAtStart = a.Liveness.Delivered + a.Liveness.StillPending
	if lastDelivery > h.FaultsEnd {
		a.Liveness.Took = lastDelivery - h.FaultsEnd
	}
	for _, k := range kinds {
		a.ByKind = append(a.ByKind, *k)
	}
	slices.SortFunc(a.ByKind, func(x, y KindCount) int { return int(x.Kind) - int(y.Kind) })
	return a
}

// eventTally is what the history holds of its events.
type eventTally struct {
	of       []eventCounts  // by index in History.Events
	held     *idIndex       // order ID -> lines held in a batch
	reallocs map[string]int // Deallocated ID -> reallocations it sent
}

// eventCounts is what the history holds of one event: 32 bytes, one array for all of them.
type eventCounts struct {
	mails, published                int32 // mails and publications the servers hold
	accepted, failed, mailsAccepted int32 // sends accepted, failed, and mail sends accepted
	inCrash                         bool  // held in memory by a crash
	firstAccepted                   time.Duration
}

// tallyEvents counts, for each event of h, what the servers hold, the sends tried, whether a
// crash held it and what it reallocated. Mails and publications of no event count as Unexpected.
func tallyEvents(h *History, a *Accounting) eventTally {
	index := IndexEvents(h.Events)
	t := eventTally{of: make([]eventCounts, len(h.Events)), held: newIDIndex(), reallocs: map[string]int{}}
	for _, m := range h.Mails {
		if i := index.Get(m.Event) - 1; i >= 0 {
			t.of[i].mails++
		} else {
			a.Unexpected++
		}
	}
	for _, p := range h.Published {
		if i := index.Get(p.Event) - 1; i >= 0 {
			t.of[i].published++
		} else {
			a.Unexpected++
		}
	}
	t.tallySends(h, index)
	for _, c := range h.Crashes {
		for _, id := range c.InFlight {
			if i := index.Get(id) - 1; i >= 0 {
				t.of[i].inCrash = true
			}
		}
	}
	for _, b := range h.Batches {
		for _, l := range b.Lines {
			t.held.add(l.OrderID, 1)
		}
	}
	for _, re := range h.Reallocations {
		t.reallocs[re.Cause]++
	}
	return t
}

// tallySends counts each event's first delivery, failed sends and accepted sends.
func (t eventTally) tallySends(h *History, index *EventIndex) {
	for _, s := range h.Sends {
		i := index.Get(s.Event) - 1
		if i < 0 {
			continue
		}
		c := &t.of[i]
		if s.Accepted {
			if c.accepted == 0 || s.At < c.firstAccepted {
				c.firstAccepted = s.At
			}
			c.accepted++
			if !s.Publish {
				c.mailsAccepted++
			}
		} else {
			c.failed++
		}
	}
}

// judgeEvent accounts for event i of h: committed or not, delivered, duplicated, pending or lost
// and why. It returns the time of the event's first delivery when that came after the faults
// stopped (the liveness phase delivered it).
func (a *Accounting) judgeEvent(h *History, t eventTally, i int, e EventOp, kinds map[EventKind]*KindCount) (time.Duration, bool) {
	c := &t.of[i]
	mails, published := int(c.mails), int(c.published)
	if e.State == RolledBack || e.State == Discarded {
		a.Unexpected += mails + published
		if e.State == Discarded {
			a.Committed++
			a.Discarded++
		}
		return 0, false
	}
	deliveries := mails
	switch e.Kind {
	case KindOutOfStock:
	case KindDeallocated: // delivered to its handler: the reallocations it sent
		deliveries = t.reallocs[e.ID]
	default:
		deliveries = published
	}
	a.Committed++
	a.Duplicated += max(mails-1, 0)
	a.DuplicatedPublished += max(published-1, 0)
	a.Resends += max(int(c.mailsAccepted)-1, 0)
	k := kinds[e.Kind]
	if k == nil {
		k = &KindCount{Kind: e.Kind}
		kinds[e.Kind] = k
	}
	k.Committed++
	k.Duplicated += max(deliveries-1, 0)
	if e.Kind == KindOutOfStock && mails > 0 && t.held.get(e.Order) > 0 {
		a.FalseOutOfStock += mails
	}
	if deliveries > 0 {
		a.Delivered++
		k.Delivered++
		if e.Unknown {
			a.Recovered++
		}
		if c.accepted > 0 && c.firstAccepted >= h.FaultsEnd {
			a.Liveness.Delivered++ // it was still pending when the faults stopped
			return c.firstAccepted, true
		}
		return 0, false
	}
	a.countUndelivered(h, t, i, k)
	return 0, false
}

// countUndelivered counts a committed event nothing delivered: pending when the run did not
// drain, else lost in a crash, after a failed send, or otherwise.
func (a *Accounting) countUndelivered(h *History, t eventTally, i int, k *KindCount) {
	switch {
	case !h.Drained:
		a.Pending++
		return
	case t.of[i].inCrash:
		a.LostInCrash++
	case t.of[i].failed > 0:
		a.LostSendFailed++
	default:
		a.LostOther++
	}
	a.Lost++
	k.Lost++
}

// Undelivered returns the IDs of the committed events, not discarded, that were never delivered:
// the lost ones of a drained run.
func (h *History) Undelivered() []string {
	delivered := newIDIndex()
	for _, m := range h.Mails {
		delivered.add(m.Event, 1)
	}
	for _, p := range h.Published {
		delivered.add(p.Event, 1)
	}
	var ids []string
	for _, e := range h.Events {
		if (e.State == Committed || e.State == Abandoned) && delivered.get(e.ID) == 0 {
			ids = append(ids, e.ID)
		}
	}
	return ids
}
