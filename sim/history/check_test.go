package history_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim/dispatch"
	"github.com/stockbus/stockbus/sim/faults"
	"github.com/stockbus/stockbus/sim/history"
	"github.com/stockbus/stockbus/sim/workload"
)

// goodHistory is a consistent history: two orders allocated in LAMP's batch of 10, whose
// Allocated events were published once each, one out of stock whose event was mailed once, and
// one event rolled back by a conflict.
func goodHistory() *history.History {
	return &history.History{
		Orders: []history.OrderOp{
			{ID: "o0-1", SKU: "LAMP", Qty: 4, Outcome: history.Allocated, Batch: "LAMP-1"},
			{ID: "o0-2", SKU: "LAMP", Qty: 6, Outcome: history.Allocated, Batch: "LAMP-1"},
			{ID: "o0-3", SKU: "LAMP", Qty: 1, Outcome: history.OutOfStock},
		},
		Events: []history.EventOp{
			{ID: "e0-1", Order: "o0-3", State: history.RolledBack, Kind: history.KindOutOfStock},
			{ID: "e0-2", Order: "o0-3", State: history.Committed, Kind: history.KindOutOfStock},
			{ID: "e1-1", Order: "o0-1", State: history.Committed, Kind: history.KindAllocated},
			{ID: "e1-2", Order: "o0-2", State: history.Committed, Kind: history.KindAllocated},
		},
		Mails:     []history.Mail{{Event: "e0-2", To: "stock@made.com", Body: "Out of stock for LAMP"}},
		Published: []history.Publication{{Event: "e1-1", Channel: "line_allocated"}, {Event: "e1-2", Channel: "line_allocated"}},
		Batches: []history.BatchState{{Ref: "LAMP-1", SKU: "LAMP", Purchased: 10, Lines: []domain.OrderLine{
			{OrderID: "o0-1", SKU: "LAMP", Qty: 4}, {OrderID: "o0-2", SKU: "LAMP", Qty: 6},
		}}},
		Clients: history.Totals{Orders: 2, Qty: 10},
		Promise: dispatch.Promise{Delivered: true, NoDuplicate: true, NoDuplicatePublish: true},
		Drained: true,
	}
}

func broken(invs []history.Invariant) map[string]int {
	out := map[string]int{}
	for _, inv := range invs {
		if !inv.OK {
			out[inv.Name] = inv.Violations
		}
	}
	return out
}

func TestCheckPassesAConsistentHistory(t *testing.T) {
	invs := history.Check(goodHistory())
	assert.Empty(t, broken(invs))
	var names []string
	for _, inv := range invs {
		names = append(names, inv.Name)
	}
	assert.Equal(t, []string{history.InvNoOverAllocation, history.InvAllocatedOnce, history.InvStoreMatches, history.InvNoUnexpected,
		history.InvNoDuplicate, history.InvNoLoss, history.InvNoFalseOutOfStock, history.InvBadInput, history.InvNoDuplicatePublish, history.InvNoFailures}, names)

	h := goodHistory()
	h.Orders = nil // not recorded: the check falls back on the clients' totals
	assert.Empty(t, broken(history.Check(h)))
}

func TestCheckFailsABrokenHistory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(h *history.History)
		want   map[string]int
	}{
		{"a batch over-allocated", func(h *history.History) {
			h.Batches[0].Purchased = 9
		}, map[string]int{history.InvNoOverAllocation: 1}},
		{"an order held by two batches", func(h *history.History) {
			h.Batches = append(h.Batches, history.BatchState{Ref: "LAMP-2", SKU: "LAMP", Purchased: 10,
				Lines: []domain.OrderLine{{OrderID: "o0-1", SKU: "LAMP", Qty: 4}}})
		}, map[string]int{history.InvAllocatedOnce: 1, history.InvStoreMatches: 2}},
		{"an allocation nobody asked for", func(h *history.History) {
			h.Batches[0].Lines = append(h.Batches[0].Lines, domain.OrderLine{OrderID: "ghost", SKU: "LAMP", Qty: 1})
			h.Batches[0].Purchased = 20
		}, map[string]int{history.InvStoreMatches: 2}},
		{"an allocated order the store lost", func(h *history.History) {
			h.Batches[0].Lines = h.Batches[0].Lines[:1]
		}, map[string]int{history.InvStoreMatches: 2}},
		{"an out-of-stock order the store holds", func(h *history.History) {
			h.Batches[0].Lines = append(h.Batches[0].Lines, domain.OrderLine{OrderID: "o0-3", SKU: "LAMP", Qty: 1})
			h.Batches[0].Purchased = 11
		}, map[string]int{history.InvStoreMatches: 2, history.InvNoFalseOutOfStock: 1}},
		{"a committed event never mailed", func(h *history.History) {
			h.Mails = nil
		}, map[string]int{history.InvNoLoss: 1}},
		{"an event mailed twice", func(h *history.History) {
			h.Mails = append(h.Mails, h.Mails[0])
		}, map[string]int{history.InvNoDuplicate: 1}},
		{"an Allocated event published twice", func(h *history.History) {
			h.Published = append(h.Published, h.Published[1])
		}, map[string]int{history.InvNoDuplicatePublish: 1}},
		{"an Allocated event published twice, not promised (the outbox)", func(h *history.History) {
			h.Published = append(h.Published, h.Published[1])
			h.Promise.NoDuplicatePublish = false
		}, map[string]int{}},
		{"a failed order, no failures required", func(h *history.History) {
			h.Orders = append(h.Orders, history.OrderOp{ID: "o0-4", SKU: "LAMP", Qty: 1, Outcome: history.Exhausted})
			h.Clients.Failed = 1
			h.Promise.NoFailures = true
		}, map[string]int{history.InvNoFailures: 1}},
		{"two failed orders, not recorded, no failures required", func(h *history.History) {
			h.Orders, h.Clients.Failed, h.Promise.NoFailures = nil, 2, true
		}, map[string]int{history.InvNoFailures: 2}},
		{"a failed order, not required", func(h *history.History) {
			h.Orders = append(h.Orders, history.OrderOp{ID: "o0-4", SKU: "LAMP", Qty: 1, Outcome: history.Exhausted})
			h.Clients.Failed = 1
		}, map[string]int{}},
		{"an Allocated event never published", func(h *history.History) {
			h.Published = h.Published[:1]
		}, map[string]int{history.InvNoLoss: 1}},
		{"a rolled-back event mailed", func(h *history.History) {
			h.Mails = append(h.Mails, history.Mail{Event: "e0-1", Body: "Out of stock for LAMP"})
		}, map[string]int{history.InvNoUnexpected: 1}},
		{"a mail for an event never raised", func(h *history.History) {
			h.Mails = append(h.Mails, history.Mail{Event: "e7-7", Body: "Out of stock for LAMP"})
		}, map[string]int{history.InvNoUnexpected: 1}},
		{"a discarded event mailed", func(h *history.History) {
			h.Events[1].State = history.Discarded
		}, map[string]int{history.InvNoUnexpected: 1}},
		{"an allocated event never published", func(h *history.History) {
			h.Events = append(h.Events, history.EventOp{ID: "e0-3", Order: "o0-1", State: history.Committed, Kind: history.KindAllocated})
		}, map[string]int{history.InvNoLoss: 1}},
		{"a publication of a rolled-back event", func(h *history.History) {
			h.Published = append(h.Published, history.Publication{Event: "e0-1", Channel: "line_allocated"})
		}, map[string]int{history.InvNoUnexpected: 1}},
		{"an out-of-stock mail for an order the store holds", func(h *history.History) {
			h.Events[1].Order = "o0-2"
		}, map[string]int{history.InvNoFalseOutOfStock: 1}},
		{"a bad order allocated", func(h *history.History) {
			h.Bad = []history.OrderOp{{ID: "o0-2", SKU: "LAMP", Qty: 6, Outcome: history.Allocated, Bad: workload.HugeQty}}
		}, map[string]int{history.InvBadInput: 3}}, // came back allocated, is held, raised an event
		{"a bad order that raised an event", func(h *history.History) {
			h.Bad = []history.OrderOp{{ID: "o0-3", SKU: "LAMP", Qty: 1, Outcome: history.Rejected, Bad: workload.UnknownSKU}}
		}, map[string]int{history.InvBadInput: 2}},
		{"an invalid line stored", func(h *history.History) {
			h.Batches[0].Lines[0].Qty, h.Clients.Qty = 0, 6
		}, map[string]int{history.InvBadInput: 1, history.InvStoreMatches: 1}},
		{"a bad batch accepted or changing the store", func(h *history.History) {
			h.BadBatches = []history.BadBatch{{What: "empty sku"}, {What: "duplicate reference", Err: "duplicate", Changed: true}}
		}, map[string]int{history.InvBadInput: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHistory()
			tc.mutate(h)
			invs := history.Check(h)
			assert.Equal(t, tc.want, broken(invs))
			for _, inv := range invs {
				if !inv.OK {
					assert.NotEmpty(t, inv.Examples, "%s says what broke", inv.Name)
				}
			}
		})
	}
}

func TestCheckFollowsThePromise(t *testing.T) {
	h := goodHistory()
	h.Mails = nil
	h.Drained = false
	assert.Empty(t, broken(history.Check(h)), "an interrupted run may leave events pending")

	h = goodHistory()
	h.Mails = nil
	h.Events[1].State = history.Discarded
	assert.Empty(t, broken(history.Check(h)), "a discarded event needs no mail")

	h = goodHistory()
	h.Mails = append(h.Mails, h.Mails[0])
	h.Promise.NoDuplicate = false
	assert.Empty(t, broken(history.Check(h)), "at-least-once may duplicate")

	h = goodHistory()
	h.Mails = nil
	h.Promise.Delivered = false
	assert.Empty(t, broken(history.Check(h)), "a strategy that promises nothing may lose")

	h = goodHistory()
	h.Mails = nil
	h.Crashes = []history.CrashOp{{Seq: 1, Point: faults.AfterCommit, Actor: "w0", InFlight: []string{"e0-2"}}}
	assert.Empty(t, broken(history.Check(h)), "delivered without faults: a crash may lose")
	h.Promise.NoLoss = true
	assert.Equal(t, map[string]int{history.InvNoLoss: 1}, broken(history.Check(h)), "at-least-once may not, whatever fails")

	h = goodHistory()
	h.Mails = nil
	h.Sends = []history.SendOp{{Event: "e0-2", Actor: "w0", Err: true}}
	assert.Empty(t, broken(history.Check(h)), "delivered without faults: a failed send may lose")
}

func TestCheckAllowsUnknownOutcomesEitherWay(t *testing.T) {
	h := goodHistory()
	h.Orders[1].Outcome = history.Unknown
	h.Clients = history.Totals{Orders: 1, Qty: 4, UnknownOrders: 1, UnknownQty: 6}
	assert.Empty(t, broken(history.Check(h)), "held although the client never learned it")

	h.Batches[0].Lines = h.Batches[0].Lines[:1]
	assert.Empty(t, broken(history.Check(h)), "not held")
}

func TestCheckScalesToManyOrders(t *testing.T) {
	h := &history.History{Promise: dispatch.Promise{Delivered: true, NoDuplicate: true}, Drained: true}
	b := history.BatchState{Ref: "B", SKU: "S", Purchased: 100_000}
	for i := range 100_000 {
		b.Lines = append(b.Lines, domain.OrderLine{OrderID: "o3-" + strconv.Itoa(i+1), SKU: "S", Qty: 1})
	}
	b.Lines = append(b.Lines, b.Lines[70_000])
	h.Batches = []history.BatchState{b}
	h.Clients = history.Totals{Orders: 100_000, Qty: 100_000}
	assert.Equal(t, map[string]int{history.InvAllocatedOnce: 1, history.InvNoOverAllocation: 1, history.InvStoreMatches: 1}, broken(history.Check(h)))
}

// TestCheckCountsALostDeallocatedAsLostNotAsAStoreMismatch: a quantity change took o0-2 out of
// LAMP-1 (Deallocated e2-1), so the store holds it nowhere although its client saw it allocated.
// When e2-1 reached its handler and the reallocation found stock, the store must hold it where
// that reallocation put it; when e2-1 never reached its handler (lost in a crash), the store is
// consistent and the event is a lost one, which the loss invariant judges under the promise.
func TestCheckCountsALostDeallocatedAsLostNotAsAStoreMismatch(t *testing.T) {
	deallocated := func(h *history.History) {
		h.Batches[0].Lines = h.Batches[0].Lines[:1]
		h.Batches[0].Purchased = 4
		h.Events = append(h.Events, history.EventOp{ID: "e2-1", Order: "o0-2", Qty: 6, State: history.Committed, Kind: history.KindDeallocated})
	}
	for _, tc := range []struct {
		name   string
		mutate func(h *history.History)
		want   map[string]int
	}{
		{"lost in a crash", func(h *history.History) {
			deallocated(h)
			h.Crashes = []history.CrashOp{{Seq: 1, Point: faults.AfterCommit, Actor: "w2", InFlight: []string{"e2-1"}}}
		}, map[string]int{}},
		{"lost under at-least-once", func(h *history.History) {
			deallocated(h)
			h.Promise.NoLoss = true
		}, map[string]int{history.InvNoLoss: 1}},
		{"reallocated out of stock", func(h *history.History) {
			deallocated(h)
			h.Reallocations = []history.Reallocation{{Cause: "e2-1", Order: "o0-2", Qty: 6, Outcome: history.OutOfStock}}
		}, map[string]int{}},
		{"reallocated into a batch that does not hold it", func(h *history.History) {
			deallocated(h)
			h.Reallocations = []history.Reallocation{{Cause: "e2-1", Order: "o0-2", Qty: 6, Batch: "LAMP-2", Outcome: history.Allocated}}
		}, map[string]int{history.InvStoreMatches: 1}},
		{"a rolled-back Deallocated moved nothing", func(h *history.History) {
			deallocated(h)
			h.Events[len(h.Events)-1].State = history.RolledBack
		}, map[string]int{history.InvStoreMatches: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHistory()
			tc.mutate(h)
			assert.Equal(t, tc.want, broken(history.Check(h)))
		})
	}
}

// TestCheckExcusesOutOfStockMailsOfAReallocationRunAgain: a Deallocated event sent again (the
// outbox after a crash) runs its reallocation again, which is not idempotent: a first run found no
// stock and mailed, a later one allocated the order. The mail is counted in the note, not as a
// broken invariant; the same mail after a reallocation that ran once is still false.
func TestCheckExcusesOutOfStockMailsOfAReallocationRunAgain(t *testing.T) {
	verdict := func(h *history.History) history.Invariant {
		for _, inv := range history.Check(h) {
			if inv.Name == history.InvNoFalseOutOfStock {
				return inv
			}
		}
		t.Fatal("no verdict on false out-of-stock mails")
		return history.Invariant{}
	}
	for _, tc := range []struct {
		name     string
		reallocs []history.Reallocation
		ok       bool
	}{
		{"run again: out of stock, then allocated", []history.Reallocation{
			{Cause: "e2-1", Order: "o0-2", Qty: 6, Outcome: history.OutOfStock},
			{Cause: "e2-1", Order: "o0-2", Qty: 6, Batch: "LAMP-1", Outcome: history.Allocated},
		}, true},
		{"run once: out of stock", []history.Reallocation{
			{Cause: "e2-1", Order: "o0-2", Qty: 6, Outcome: history.OutOfStock},
		}, false},
		{"another order's reallocation run again", []history.Reallocation{
			{Cause: "e2-1", Order: "o0-1", Qty: 4, Outcome: history.OutOfStock},
			{Cause: "e2-1", Order: "o0-1", Qty: 4, Batch: "LAMP-1", Outcome: history.Allocated},
		}, false},
		{"run again, allocated both times", []history.Reallocation{
			{Cause: "e2-1", Order: "o0-2", Qty: 6, Batch: "LAMP-1", Outcome: history.Allocated},
			{Cause: "e2-1", Order: "o0-2", Qty: 6, Batch: "LAMP-1", Outcome: history.Allocated},
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHistory()
			h.Events[1].Order = "o0-2" // its out-of-stock mail is for an order the store holds
			h.Reallocations = tc.reallocs
			inv := verdict(h)
			assert.Equal(t, tc.ok, inv.OK, "%v", inv.Examples)
			if tc.ok {
				assert.Contains(t, inv.Note, "1 out-of-stock mails for orders the store holds came from reallocations run again")
			} else {
				assert.Empty(t, inv.Note)
			}
		})
	}
}
