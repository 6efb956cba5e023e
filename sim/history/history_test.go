package history_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim/faults"
	"github.com/stockbus/stockbus/sim/history"
)

// digestHistory is a small history with something of every part the digest reads.
func digestHistory() *history.History {
	return &history.History{
		Orders: []history.OrderOp{
			{ID: "o0-9", SKU: "LAMP", Qty: 2, Outcome: history.Allocated, Batch: "B1", Start: 1, End: 5},
			{ID: "o0-10", SKU: "LAMP", Qty: 3, Outcome: history.OutOfStock, Start: 2, End: 7},
		},
		Events: []history.EventOp{
			{ID: "e0-1", Order: "o0-9", State: history.Committed, Kind: history.KindAllocated, CommittedAt: 3},
			{ID: "e0-2", Order: "o0-10", State: history.Committed, Kind: history.KindOutOfStock, CommittedAt: 6},
		},
		Crashes:   []history.CrashOp{{Seq: 1, At: 4, Point: faults.AfterCommit, Actor: "w0", InFlight: []string{"e0-2"}}},
		Mails:     []history.Mail{{Event: "e0-2", To: "c@x", Body: "out of stock"}},
		Published: []history.Publication{{Event: "e0-1", Channel: "line_allocated"}},
		Products:  []history.ProductState{{SKU: "LAMP", Version: 2}},
		Batches: []history.BatchState{{Ref: "B1", SKU: "LAMP", Purchased: 5,
			Lines: []domain.OrderLine{{OrderID: "o0-9", SKU: "LAMP", Qty: 2}}}},
	}
}

// The digest names what a run did, not when or in which interleaving: reordered records, other
// timings and a publication repeated leave it; any outcome changed moves it.
func TestDigestChangesWithOutcomesOnly(t *testing.T) {
	want := digestHistory().Digest()
	require.Len(t, want, 24)
	same := []struct {
		name   string
		mutate func(h *history.History)
	}{
		{"orders in another order", func(h *history.History) { slices.Reverse(h.Orders) }},
		{"events in another order", func(h *history.History) { slices.Reverse(h.Events) }},
		{"other timings", func(h *history.History) {
			h.Orders[0].End, h.Events[0].CommittedAt, h.Crashes[0].At = time.Hour, time.Hour, time.Hour
		}},
		{"a publication repeated", func(h *history.History) { h.Published = append(h.Published, h.Published[0]) }},
		{"a send recorded", func(h *history.History) { h.Sends = []history.SendOp{{Event: "e0-2", Actor: "w0"}} }},
	}
	for _, row := range same {
		t.Run(row.name, func(t *testing.T) {
			h := digestHistory()
			row.mutate(h)
			assert.Equal(t, want, h.Digest())
		})
	}
	moved := []struct {
		name   string
		mutate func(h *history.History)
	}{
		{"an order's outcome", func(h *history.History) { h.Orders[1].Outcome = history.Failed }},
		{"an order's batch", func(h *history.History) { h.Orders[0].Batch = "B2" }},
		{"an event's state", func(h *history.History) { h.Events[0].State = history.RolledBack }},
		{"an event's client never learned", func(h *history.History) { h.Events[1].Unknown = true }},
		{"the crash point", func(h *history.History) { h.Crashes[0].Point = faults.BeforeCommit }},
		{"what the crash held", func(h *history.History) { h.Crashes[0].InFlight = nil }},
		{"a mail's body", func(h *history.History) { h.Mails[0].Body = "in stock" }},
		{"a mail more", func(h *history.History) { h.Mails = append(h.Mails, h.Mails[0]) }},
		{"a publication's channel", func(h *history.History) { h.Published[0].Channel = "other" }},
		{"a product's version", func(h *history.History) { h.Products[0].Version = 3 }},
		{"a line's quantity", func(h *history.History) { h.Batches[0].Lines[0].Qty = 1 }},
	}
	for _, row := range moved {
		t.Run(row.name, func(t *testing.T) {
			h := digestHistory()
			row.mutate(h)
			assert.NotEqual(t, want, h.Digest())
		})
	}
}

func TestCompareIDsOrdersByTheNumbers(t *testing.T) {
	ids := []string{"o2-10", "e0-1", "o10-1", "o2-9", "x", "o2-1"}
	slices.SortFunc(ids, history.CompareIDs)
	assert.Equal(t, []string{"e0-1", "o2-1", "o2-9", "o2-10", "o10-1", "x"}, ids)
}
