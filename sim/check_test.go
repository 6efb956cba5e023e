package sim_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim"
)

// goodHistory is a consistent history: two orders allocated in LAMP's batch of 10, whose
// Allocated events were published once each, one out of stock whose event was mailed once, and
// one event rolled back by a conflict.
func goodHistory() *sim.History {
	return &sim.History{
		Orders: []sim.OrderOp{
			{ID: "o0-1", SKU: "LAMP", Qty: 4, Outcome: sim.Allocated, Batch: "LAMP-1"},
			{ID: "o0-2", SKU: "LAMP", Qty: 6, Outcome: sim.Allocated, Batch: "LAMP-1"},
			{ID: "o0-3", SKU: "LAMP", Qty: 1, Outcome: sim.OutOfStock},
		},
		Events: []sim.EventOp{
			{ID: "e0-1", Order: "o0-3", State: sim.RolledBack, Kind: sim.KindOutOfStock},
			{ID: "e0-2", Order: "o0-3", State: sim.Committed, Kind: sim.KindOutOfStock},
			{ID: "e1-1", Order: "o0-1", State: sim.Committed, Kind: sim.KindAllocated},
			{ID: "e1-2", Order: "o0-2", State: sim.Committed, Kind: sim.KindAllocated},
		},
		Mails:     []sim.Mail{{Event: "e0-2", To: "stock@made.com", Body: "Out of stock for LAMP"}},
		Published: []sim.Publication{{Event: "e1-1", Channel: "line_allocated"}, {Event: "e1-2", Channel: "line_allocated"}},
		Batches: []sim.BatchState{{Ref: "LAMP-1", SKU: "LAMP", Purchased: 10, Lines: []domain.OrderLine{
			{OrderID: "o0-1", SKU: "LAMP", Qty: 4}, {OrderID: "o0-2", SKU: "LAMP", Qty: 6},
		}}},
		Clients: sim.Totals{Orders: 2, Qty: 10},
		Promise: sim.Promise{Delivered: true, NoDuplicate: true, NoDuplicatePublish: true},
		Drained: true,
	}
}

func broken(invs []sim.Invariant) map[string]int {
	out := map[string]int{}
	for _, inv := range invs {
		if !inv.OK {
			out[inv.Name] = inv.Violations
		}
	}
	return out
}

func TestCheckPassesAConsistentHistory(t *testing.T) {
	invs := sim.Check(goodHistory())
	assert.Empty(t, broken(invs))
	var names []string
	for _, inv := range invs {
		names = append(names, inv.Name)
	}
	assert.Equal(t, []string{sim.InvNoOverAllocation, sim.InvAllocatedOnce, sim.InvStoreMatches, sim.InvNoUnexpected,
		sim.InvNoDuplicate, sim.InvNoLoss, sim.InvNoFalseOutOfStock, sim.InvBadInput, sim.InvNoDuplicatePublish, sim.InvNoFailures}, names)

	h := goodHistory()
	h.Orders = nil // not recorded: the check falls back on the clients' totals
	assert.Empty(t, broken(sim.Check(h)))
}

func TestCheckFailsABrokenHistory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(h *sim.History)
		want   map[string]int
	}{
		{"a batch over-allocated", func(h *sim.History) {
			h.Batches[0].Purchased = 9
		}, map[string]int{sim.InvNoOverAllocation: 1}},
		{"an order held by two batches", func(h *sim.History) {
			h.Batches = append(h.Batches, sim.BatchState{Ref: "LAMP-2", SKU: "LAMP", Purchased: 10,
				Lines: []domain.OrderLine{{OrderID: "o0-1", SKU: "LAMP", Qty: 4}}})
		}, map[string]int{sim.InvAllocatedOnce: 1, sim.InvStoreMatches: 2}},
		{"an allocation nobody asked for", func(h *sim.History) {
			h.Batches[0].Lines = append(h.Batches[0].Lines, domain.OrderLine{OrderID: "ghost", SKU: "LAMP", Qty: 1})
			h.Batches[0].Purchased = 20
		}, map[string]int{sim.InvStoreMatches: 2}},
		{"an allocated order the store lost", func(h *sim.History) {
			h.Batches[0].Lines = h.Batches[0].Lines[:1]
		}, map[string]int{sim.InvStoreMatches: 2}},
		{"an out-of-stock order the store holds", func(h *sim.History) {
			h.Batches[0].Lines = append(h.Batches[0].Lines, domain.OrderLine{OrderID: "o0-3", SKU: "LAMP", Qty: 1})
			h.Batches[0].Purchased = 11
		}, map[string]int{sim.InvStoreMatches: 2, sim.InvNoFalseOutOfStock: 1}},
		{"a committed event never mailed", func(h *sim.History) {
			h.Mails = nil
		}, map[string]int{sim.InvNoLoss: 1}},
		{"an event mailed twice", func(h *sim.History) {
			h.Mails = append(h.Mails, h.Mails[0])
		}, map[string]int{sim.InvNoDuplicate: 1}},
		{"an Allocated event published twice", func(h *sim.History) {
			h.Published = append(h.Published, h.Published[1])
		}, map[string]int{sim.InvNoDuplicatePublish: 1}},
		{"an Allocated event published twice, not promised (the outbox)", func(h *sim.History) {
			h.Published = append(h.Published, h.Published[1])
			h.Promise.NoDuplicatePublish = false
		}, map[string]int{}},
		{"a failed order, no failures required", func(h *sim.History) {
			h.Orders = append(h.Orders, sim.OrderOp{ID: "o0-4", SKU: "LAMP", Qty: 1, Outcome: sim.Exhausted})
			h.Clients.Failed = 1
			h.Promise.NoFailures = true
		}, map[string]int{sim.InvNoFailures: 1}},
		{"two failed orders, not recorded, no failures required", func(h *sim.History) {
			h.Orders, h.Clients.Failed, h.Promise.NoFailures = nil, 2, true
		}, map[string]int{sim.InvNoFailures: 2}},
		{"a failed order, not required", func(h *sim.History) {
			h.Orders = append(h.Orders, sim.OrderOp{ID: "o0-4", SKU: "LAMP", Qty: 1, Outcome: sim.Exhausted})
			h.Clients.Failed = 1
		}, map[string]int{}},
		{"an Allocated event never published", func(h *sim.History) {
			h.Published = h.Published[:1]
		}, map[string]int{sim.InvNoLoss: 1}},
		{"a rolled-back event mailed", func(h *sim.History) {
			h.Mails = append(h.Mails, sim.Mail{Event: "e0-1", Body: "Out of stock for LAMP"})
		}, map[string]int{sim.InvNoUnexpected: 1}},
		{"a mail for an event never raised", func(h *sim.History) {
			h.Mails = append(h.Mails, sim.Mail{Event: "e7-7", Body: "Out of stock for LAMP"})
		}, map[string]int{sim.InvNoUnexpected: 1}},
		{"a discarded event mailed", func(h *sim.History) {
			h.Events[1].State = sim.Discarded
		}, map[string]int{sim.InvNoUnexpected: 1}},
		{"an allocated event never published", func(h *sim.History) {
			h.Events = append(h.Events, sim.EventOp{ID: "e0-3", Order: "o0-1", State: sim.Committed, Kind: sim.KindAllocated})
		}, map[string]int{sim.InvNoLoss: 1}},
		{"a publication of a rolled-back event", func(h *sim.History) {
			h.Published = append(h.Published, sim.Publication{Event: "e0-1", Channel: "line_allocated"})
		}, map[string]int{sim.InvNoUnexpected: 1}},
		{"an out-of-stock mail for an order the store holds", func(h *sim.History) {
			h.Events[1].Order = "o0-2"
		}, map[string]int{sim.InvNoFalseOutOfStock: 1}},
		{"a bad order allocated", func(h *sim.History) {
			h.Bad = []sim.OrderOp{{ID: "o0-2", SKU: "LAMP", Qty: 6, Outcome: sim.Allocated, Bad: sim.HugeQty}}
		}, map[string]int{sim.InvBadInput: 3}}, // came back allocated, is held, raised an event
		{"a bad order that raised an event", func(h *sim.History) {
			h.Bad = []sim.OrderOp{{ID: "o0-3", SKU: "LAMP", Qty: 1, Outcome: sim.Rejected, Bad: sim.UnknownSKU}}
		}, map[string]int{sim.InvBadInput: 2}},
		{"an invalid line stored", func(h *sim.History) {
			h.Batches[0].Lines[0].Qty, h.Clients.Qty = 0, 6
		}, map[string]int{sim.InvBadInput: 1, sim.InvStoreMatches: 1}},
		{"a bad batch accepted or changing the store", func(h *sim.History) {
			h.BadBatches = []sim.BadBatch{{What: "empty sku"}, {What: "duplicate reference", Err: "duplicate", Changed: true}}
		}, map[string]int{sim.InvBadInput: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHistory()
			tc.mutate(h)
			invs := sim.Check(h)
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
	assert.Empty(t, broken(sim.Check(h)), "an interrupted run may leave events pending")

	h = goodHistory()
	h.Mails = nil
	h.Events[1].State = sim.Discarded
	assert.Empty(t, broken(sim.Check(h)), "a discarded event needs no mail")

	h = goodHistory()
	h.Mails = append(h.Mails, h.Mails[0])
	h.Promise.NoDuplicate = false
	assert.Empty(t, broken(sim.Check(h)), "at-least-once may duplicate")

	h = goodHistory()
	h.Mails = nil
	h.Promise.Delivered = false
	assert.Empty(t, broken(sim.Check(h)), "a strategy that promises nothing may lose")

	h = goodHistory()
	h.Mails = nil
	h.Crashes = []sim.CrashOp{{Seq: 1, Point: sim.AfterCommit, Actor: "w0", InFlight: []string{"e0-2"}}}
	assert.Empty(t, broken(sim.Check(h)), "delivered without faults: a crash may lose")
	h.Promise.NoLoss = true
	assert.Equal(t, map[string]int{sim.InvNoLoss: 1}, broken(sim.Check(h)), "at-least-once may not, whatever fails")

	h = goodHistory()
	h.Mails = nil
	h.Sends = []sim.SendOp{{Event: "e0-2", Actor: "w0", Err: true}}
	assert.Empty(t, broken(sim.Check(h)), "delivered without faults: a failed send may lose")
}

func TestCheckAllowsUnknownOutcomesEitherWay(t *testing.T) {
	h := goodHistory()
	h.Orders[1].Outcome = sim.Unknown
	h.Clients = sim.Totals{Orders: 1, Qty: 4, UnknownOrders: 1, UnknownQty: 6}
	assert.Empty(t, broken(sim.Check(h)), "held although the client never learned it")

	h.Batches[0].Lines = h.Batches[0].Lines[:1]
	assert.Empty(t, broken(sim.Check(h)), "not held")
}

func TestCheckScalesToManyOrders(t *testing.T) {
	h := &sim.History{Promise: sim.Promise{Delivered: true, NoDuplicate: true}, Drained: true}
	b := sim.BatchState{Ref: "B", SKU: "S", Purchased: 100_000}
	for i := range 100_000 {
		b.Lines = append(b.Lines, domain.OrderLine{OrderID: "o3-" + strconv.Itoa(i+1), SKU: "S", Qty: 1})
	}
	b.Lines = append(b.Lines, b.Lines[70_000])
	h.Batches = []sim.BatchState{b}
	h.Clients = sim.Totals{Orders: 100_000, Qty: 100_000}
	assert.Equal(t, map[string]int{sim.InvAllocatedOnce: 1, sim.InvNoOverAllocation: 1, sim.InvStoreMatches: 1}, broken(sim.Check(h)))
}

// TestCheckCountsALostDeallocatedAsLostNotAsAStoreMismatch: a quantity change took o0-2 out of
// LAMP-1 (Deallocated e2-1), so the store holds it nowhere although its client saw it allocated.
// When e2-1 reached its handler and the reallocation found stock, the store must hold it where
// that reallocation put it; when e2-1 never reached its handler (lost in a crash), the store is
// consistent and the event is a lost one, which the loss invariant judges under the promise.
func TestCheckCountsALostDeallocatedAsLostNotAsAStoreMismatch(t *testing.T) {
	deallocated := func(h *sim.History) {
		h.Batches[0].Lines = h.Batches[0].Lines[:1]
		h.Batches[0].Purchased = 4
		h.Events = append(h.Events, sim.EventOp{ID: "e2-1", Order: "o0-2", Qty: 6, State: sim.Committed, Kind: sim.KindDeallocated})
	}
	for _, tc := range []struct {
		name   string
		mutate func(h *sim.History)
		want   map[string]int
	}{
		{"lost in a crash", func(h *sim.History) {
			deallocated(h)
			h.Crashes = []sim.CrashOp{{Seq: 1, Point: sim.AfterCommit, Actor: "w2", InFlight: []string{"e2-1"}}}
		}, map[string]int{}},
		{"lost under at-least-once", func(h *sim.History) {
			deallocated(h)
			h.Promise.NoLoss = true
		}, map[string]int{sim.InvNoLoss: 1}},
		{"reallocated out of stock", func(h *sim.History) {
			deallocated(h)
			h.Reallocations = []sim.Reallocation{{Cause: "e2-1", Order: "o0-2", Qty: 6, Outcome: sim.OutOfStock}}
		}, map[string]int{}},
		{"reallocated into a batch that does not hold it", func(h *sim.History) {
			deallocated(h)
			h.Reallocations = []sim.Reallocation{{Cause: "e2-1", Order: "o0-2", Qty: 6, Batch: "LAMP-2", Outcome: sim.Allocated}}
		}, map[string]int{sim.InvStoreMatches: 1}},
		{"a rolled-back Deallocated moved nothing", func(h *sim.History) {
			deallocated(h)
			h.Events[len(h.Events)-1].State = sim.RolledBack
		}, map[string]int{sim.InvStoreMatches: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHistory()
			tc.mutate(h)
			assert.Equal(t, tc.want, broken(sim.Check(h)))
		})
	}
}
