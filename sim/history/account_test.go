package history_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim/faults"
	"github.com/stockbus/stockbus/sim/history"
)

// faultyHistory is a drained run of seven committed events and one rolled back, each with its
// own fate: mailed once, mailed twice (a re-send), lost in a crash, lost to failed sends, mailed
// although its client never learned the outcome, an Allocated event published, an Allocated event
// never published; and a mail for the rolled-back one.
func faultyHistory() *history.History {
	oos := func(id, order string, unknown bool) history.EventOp {
		return history.EventOp{ID: id, Order: order, State: history.Committed, Kind: history.KindOutOfStock, Unknown: unknown}
	}
	return &history.History{
		Events: []history.EventOp{
			oos("e0-1", "o0-1", false),
			oos("e0-2", "o0-2", false),
			oos("e0-3", "o0-3", false),
			oos("e0-4", "o0-4", false),
			oos("e0-5", "o0-5", true),
			{ID: "e0-6", Order: "o0-6", State: history.Committed, Kind: history.KindAllocated},
			{ID: "e0-7", Order: "o0-7", State: history.Committed, Kind: history.KindAllocated},
			{ID: "e0-8", Order: "o0-8", State: history.RolledBack},
		},
		Sends: []history.SendOp{
			{Event: "e0-1", Actor: "w0", At: 10, Accepted: true},
			{Event: "e0-2", Actor: "r0", At: 10, Accepted: true},
			{Event: "e0-2", Actor: "r1@1", At: 20, Accepted: true},
			{Event: "e0-4", Actor: "w0", At: 10, Err: true},
			{Event: "e0-4", Actor: "w0", At: 11, Err: true, Timeout: true},
			{Event: "e0-5", Actor: "r0@1", At: 30, Accepted: true},
			{Event: "e0-6", Actor: "w0", At: 10, Accepted: true, Publish: true},
			{Event: "e0-8", Actor: "w0", At: 10, Accepted: true},
		},
		Mails: []history.Mail{
			{Event: "e0-1"}, {Event: "e0-2"}, {Event: "e0-2"}, {Event: "e0-5"}, {Event: "e0-8"}, {Event: "e9-9"},
		},
		Published: []history.Publication{{Event: "e0-6", Channel: "line_allocated"}},
		Crashes:   []history.CrashOp{{Seq: 1, Point: faults.AfterCommit, Actor: "w0", InFlight: []string{"e0-3"}}},
		Batches: []history.BatchState{{Ref: "b", SKU: "S", Purchased: 10, Lines: []domain.OrderLine{
			{OrderID: "o0-6", SKU: "S", Qty: 1}, {OrderID: "o0-7", SKU: "S", Qty: 1},
		}}},
		Drained:   true,
		FaultsEnd: 25,
	}
}

func TestAccountCountsWhatBecameOfEveryEvent(t *testing.T) {
	a := history.Account(faultyHistory())
	assert.Equal(t, 7, a.Committed)
	assert.Equal(t, 4, a.Delivered, "e0-1, e0-2, e0-5 mailed; e0-6 published")
	assert.Equal(t, 3, a.Lost)
	assert.Equal(t, 1, a.LostInCrash, "e0-3")
	assert.Equal(t, 1, a.LostSendFailed, "e0-4")
	assert.Equal(t, 1, a.LostOther, "e0-7, an Allocated event never published")
	assert.Equal(t, 1, a.Duplicated, "e0-2 mailed twice")
	assert.Equal(t, 1, a.Resends)
	assert.Equal(t, 2, a.Unexpected, "a mail for the rolled-back e0-8 and one for e9-9, never raised")
	assert.Equal(t, 1, a.Recovered, "e0-5: its client never learned the outcome")
	assert.Zero(t, a.FalseOutOfStock)
	assert.Zero(t, a.Pending)
	assert.Equal(t, history.Liveness{FaultsEnd: 25, PendingAtStart: 1, Delivered: 1, Took: 5}, a.Liveness, "e0-5 went out after the faults")
	assert.Equal(t, []history.KindCount{
		{Kind: history.KindOutOfStock, Committed: 5, Delivered: 3, Lost: 2, Duplicated: 1},
		{Kind: history.KindAllocated, Committed: 2, Delivered: 1, Lost: 1},
	}, a.ByKind)
	assert.Equal(t, 1, a.Kind(history.KindAllocated).Lost)
	assert.Equal(t, history.KindCount{Kind: history.KindDeallocated}, a.Kind(history.KindDeallocated))
}

func TestAccountOfAnInterruptedRunCountsPendingNotLost(t *testing.T) {
	h := faultyHistory()
	h.Drained, h.StillHeld = false, 3
	a := history.Account(h)
	assert.Zero(t, a.Lost)
	assert.Equal(t, 3, a.Pending)
	assert.Equal(t, 3, a.Liveness.StillPending)
	assert.Equal(t, 4, a.Liveness.PendingAtStart)
}

func TestAccountFindsFalseOutOfStockMails(t *testing.T) {
	h := faultyHistory()
	h.Batches[0].Lines = append(h.Batches[0].Lines, domain.OrderLine{OrderID: "o0-2", SKU: "S", Qty: 1})
	assert.Equal(t, 2, history.Account(h).FalseOutOfStock, "both mails of e0-2 were for an order the store holds")
}

func TestAccountOfDiscardedEvents(t *testing.T) {
	h := faultyHistory()
	h.Events[3].State = history.Discarded // e0-4: dropped by a full queue, not lost
	a := history.Account(h)
	assert.Equal(t, 1, a.Discarded)
	assert.Equal(t, 7, a.Committed, "a discarded event was committed")
	assert.Equal(t, 2, a.Lost)
	assert.Equal(t, []string{"e0-3", "e0-7"}, h.Undelivered())
}

// One hand-built history pins every counter: an OutOfStock event mailed three times (two
// surplus mails, not one duplicated event), one lost in a crash, one delivered although its
// client never learned the outcome, a mail for a rolled-back event, and an Allocated event
// published twice.
func TestAccountPinsEachCounterOnAThreeTimesMailedEvent(t *testing.T) {
	oos := func(id, order string, state history.EventState, unknown bool) history.EventOp {
		return history.EventOp{ID: id, Order: order, State: state, Kind: history.KindOutOfStock, Unknown: unknown}
	}
	h := &history.History{
		Events: []history.EventOp{
			oos("e0-1", "o0-1", history.Committed, false),
			oos("e0-2", "o0-2", history.Committed, false),
			oos("e0-3", "o0-3", history.Committed, true),
			oos("e0-4", "o0-4", history.RolledBack, false),
			{ID: "e0-5", Order: "o0-5", State: history.Committed, Kind: history.KindAllocated},
		},
		Sends: []history.SendOp{
			{Event: "e0-1", Actor: "r0", At: 10, Accepted: true},
			{Event: "e0-1", Actor: "r1@1", At: 20, Accepted: true},
			{Event: "e0-1", Actor: "r2@2", At: 30, Accepted: true},
			{Event: "e0-3", Actor: "r0@2", At: 40, Accepted: true},
			{Event: "e0-4", Actor: "w0", At: 50, Accepted: true},
			{Event: "e0-5", Actor: "r1", At: 15, Accepted: true, Publish: true},
			{Event: "e0-5", Actor: "r3@1", At: 25, Accepted: true, Publish: true},
		},
		Mails:     []history.Mail{{Event: "e0-1"}, {Event: "e0-1"}, {Event: "e0-1"}, {Event: "e0-3"}, {Event: "e0-4"}},
		Published: []history.Publication{{Event: "e0-5", Channel: "line_allocated"}, {Event: "e0-5", Channel: "line_allocated"}},
		Crashes:   []history.CrashOp{{Seq: 1, Point: faults.AfterCommit, Actor: "w1", InFlight: []string{"e0-2"}}},
		Batches: []history.BatchState{{Ref: "b", SKU: "S", Purchased: 1, Lines: []domain.OrderLine{
			{OrderID: "o0-5", SKU: "S", Qty: 1},
		}}},
		Drained:   true,
		FaultsEnd: 100,
	}
	assert.Equal(t, history.Accounting{
		Committed: 4, Delivered: 3, Lost: 1, LostInCrash: 1,
		Duplicated: 2, DuplicatedPublished: 1, Resends: 2, Unexpected: 1, Recovered: 1,
		Liveness: history.Liveness{FaultsEnd: 100},
		ByKind: []history.KindCount{
			{Kind: history.KindOutOfStock, Committed: 3, Delivered: 2, Lost: 1, Duplicated: 2},
			{Kind: history.KindAllocated, Committed: 1, Delivered: 1, Duplicated: 1},
		},
	}, history.Account(h))
}
