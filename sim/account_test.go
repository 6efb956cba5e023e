package sim_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim"
)

// faultyHistory is a drained run of seven committed events and one rolled back, each with its
// own fate: mailed once, mailed twice (a re-send), lost in a crash, lost to failed sends, mailed
// although its client never learned the outcome, an Allocated event published, an Allocated event
// never published; and a mail for the rolled-back one.
func faultyHistory() *sim.History {
	oos := func(id, order string, unknown bool) sim.EventOp {
		return sim.EventOp{ID: id, Order: order, State: sim.Committed, Kind: sim.KindOutOfStock, Unknown: unknown}
	}
	return &sim.History{
		Events: []sim.EventOp{
			oos("e0-1", "o0-1", false),
			oos("e0-2", "o0-2", false),
			oos("e0-3", "o0-3", false),
			oos("e0-4", "o0-4", false),
			oos("e0-5", "o0-5", true),
			{ID: "e0-6", Order: "o0-6", State: sim.Committed, Kind: sim.KindAllocated},
			{ID: "e0-7", Order: "o0-7", State: sim.Committed, Kind: sim.KindAllocated},
			{ID: "e0-8", Order: "o0-8", State: sim.RolledBack},
		},
		Sends: []sim.SendOp{
			{Event: "e0-1", Actor: "w0", At: 10, Accepted: true},
			{Event: "e0-2", Actor: "r0", At: 10, Accepted: true},
			{Event: "e0-2", Actor: "r1@1", At: 20, Accepted: true},
			{Event: "e0-4", Actor: "w0", At: 10, Err: true},
			{Event: "e0-4", Actor: "w0", At: 11, Err: true, Timeout: true},
			{Event: "e0-5", Actor: "r0@1", At: 30, Accepted: true},
			{Event: "e0-6", Actor: "w0", At: 10, Accepted: true, Publish: true},
			{Event: "e0-8", Actor: "w0", At: 10, Accepted: true},
		},
		Mails: []sim.Mail{
			{Event: "e0-1"}, {Event: "e0-2"}, {Event: "e0-2"}, {Event: "e0-5"}, {Event: "e0-8"}, {Event: "e9-9"},
		},
		Published: []sim.Publication{{Event: "e0-6", Channel: "line_allocated"}},
		Crashes:   []sim.CrashOp{{Seq: 1, Point: sim.AfterCommit, Actor: "w0", InFlight: []string{"e0-3"}}},
		Batches: []sim.BatchState{{Ref: "b", SKU: "S", Purchased: 10, Lines: []domain.OrderLine{
			{OrderID: "o0-6", SKU: "S", Qty: 1}, {OrderID: "o0-7", SKU: "S", Qty: 1},
		}}},
		Drained:   true,
		FaultsEnd: 25,
	}
}

func TestAccountCountsWhatBecameOfEveryEvent(t *testing.T) {
	a := sim.Account(faultyHistory())
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
	assert.Equal(t, sim.Liveness{FaultsEnd: 25, PendingAtStart: 1, Delivered: 1, Took: 5}, a.Liveness, "e0-5 went out after the faults")
	assert.Equal(t, []sim.KindCount{
		{Kind: sim.KindOutOfStock, Committed: 5, Delivered: 3, Lost: 2, Duplicated: 1},
		{Kind: sim.KindAllocated, Committed: 2, Delivered: 1, Lost: 1},
	}, a.ByKind)
	assert.Equal(t, 1, a.Kind(sim.KindAllocated).Lost)
	assert.Equal(t, sim.KindCount{Kind: sim.KindDeallocated}, a.Kind(sim.KindDeallocated))
}

func TestAccountOfAnInterruptedRunCountsPendingNotLost(t *testing.T) {
	h := faultyHistory()
	h.Drained, h.StillHeld = false, 3
	a := sim.Account(h)
	assert.Zero(t, a.Lost)
	assert.Equal(t, 3, a.Pending)
	assert.Equal(t, 3, a.Liveness.StillPending)
	assert.Equal(t, 4, a.Liveness.PendingAtStart)
}

func TestAccountFindsFalseOutOfStockMails(t *testing.T) {
	h := faultyHistory()
	h.Batches[0].Lines = append(h.Batches[0].Lines, domain.OrderLine{OrderID: "o0-2", SKU: "S", Qty: 1})
	assert.Equal(t, 2, sim.Account(h).FalseOutOfStock, "both mails of e0-2 were for an order the store holds")
}

func TestAccountOfDiscardedEvents(t *testing.T) {
	h := faultyHistory()
	h.Events[3].State = sim.Discarded // e0-4: dropped by a full queue, not lost
	a := sim.Account(h)
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
	oos := func(id, order string, state sim.EventState, unknown bool) sim.EventOp {
		return sim.EventOp{ID: id, Order: order, State: state, Kind: sim.KindOutOfStock, Unknown: unknown}
	}
	h := &sim.History{
		Events: []sim.EventOp{
			oos("e0-1", "o0-1", sim.Committed, false),
			oos("e0-2", "o0-2", sim.Committed, false),
			oos("e0-3", "o0-3", sim.Committed, true),
			oos("e0-4", "o0-4", sim.RolledBack, false),
			{ID: "e0-5", Order: "o0-5", State: sim.Committed, Kind: sim.KindAllocated},
		},
		Sends: []sim.SendOp{
			{Event: "e0-1", Actor: "r0", At: 10, Accepted: true},
			{Event: "e0-1", Actor: "r1@1", At: 20, Accepted: true},
			{Event: "e0-1", Actor: "r2@2", At: 30, Accepted: true},
			{Event: "e0-3", Actor: "r0@2", At: 40, Accepted: true},
			{Event: "e0-4", Actor: "w0", At: 50, Accepted: true},
			{Event: "e0-5", Actor: "r1", At: 15, Accepted: true, Publish: true},
			{Event: "e0-5", Actor: "r3@1", At: 25, Accepted: true, Publish: true},
		},
		Mails:     []sim.Mail{{Event: "e0-1"}, {Event: "e0-1"}, {Event: "e0-1"}, {Event: "e0-3"}, {Event: "e0-4"}},
		Published: []sim.Publication{{Event: "e0-5", Channel: "line_allocated"}, {Event: "e0-5", Channel: "line_allocated"}},
		Crashes:   []sim.CrashOp{{Seq: 1, Point: sim.AfterCommit, Actor: "w1", InFlight: []string{"e0-2"}}},
		Batches: []sim.BatchState{{Ref: "b", SKU: "S", Purchased: 1, Lines: []domain.OrderLine{
			{OrderID: "o0-5", SKU: "S", Qty: 1},
		}}},
		Drained:   true,
		FaultsEnd: 100,
	}
	assert.Equal(t, sim.Accounting{
		Committed: 4, Delivered: 3, Lost: 1, LostInCrash: 1,
		Duplicated: 2, DuplicatedPublished: 1, Resends: 2, Unexpected: 1, Recovered: 1,
		Liveness: sim.Liveness{FaultsEnd: 100},
		ByKind: []sim.KindCount{
			{Kind: sim.KindOutOfStock, Committed: 3, Delivered: 2, Lost: 1, Duplicated: 2},
			{Kind: sim.KindAllocated, Committed: 1, Delivered: 1, Duplicated: 1},
		},
	}, sim.Account(h))
}

// The report's handler retries are the sends that repeated their actor's failed send of the
// same event, as the history shows them.
func TestHandlerRetriesAreTheHistorysRepeatedSends(t *testing.T) {
	cfg := sim.Default()
	cfg.Strategy, cfg.MailErrors, cfg.Orders, cfg.Workers, cfg.Mailer = sim.SyncRetry, 0.3, 400, 2, sim.FixedLatency(0)
	r, err := sim.Run(context.Background(), cfg)
	require.NoError(t, err)
	want := 0
	type key struct{ actor, event string }
	failed := map[key]bool{}
	for _, s := range r.History.Sends {
		k := key{s.Actor, s.Event}
		if failed[k] {
			want++
		}
		failed[k] = s.Err
	}
	require.Positive(t, want, "the run retried no send: nothing to count")
	assert.Equal(t, int64(want), r.Faults.HandlerRetries)
}

// An event commits inside the request of its order: between the order's start and its end, as
// the client saw them, and the commit histogram holds one commit per committing request at least.
func TestEventsCommitWithinTheirOrdersRequest(t *testing.T) {
	cfg := sim.Default()
	cfg.Orders, cfg.Workers, cfg.Mailer, cfg.Record = 600, 2, sim.FixedLatency(0), true
	r, err := sim.Run(context.Background(), cfg)
	require.NoError(t, err)
	orders := map[string]sim.OrderOp{}
	for _, o := range r.History.Orders {
		orders[o.ID] = o
	}
	checked := 0
	for _, e := range r.History.Events {
		o, ok := orders[e.Order]
		if e.State != sim.Committed || !ok {
			continue
		}
		checked++
		assert.GreaterOrEqual(t, e.CommittedAt, o.Start, "event %s of order %s committed before the order started", e.ID, o.ID)
		assert.LessOrEqual(t, e.CommittedAt, o.End, "event %s of order %s committed after the order ended", e.ID, o.ID)
	}
	require.Positive(t, checked, "no committed event of a recorded order")
}
