package outbox_test

import (
	"testing"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox/outboxtest"
)

func TestCrashedRelaysLoseNothingOnTheFakeStore(t *testing.T) {
	for _, c := range []struct {
		name string
		plan outboxtest.Crashes
	}{
		{"one relay, de-duplicating mailer", outboxtest.Crashes{Relays: 1, CrashEvery: 7, Batch: 5, Stock: 50, Orders: 100, Dedup: true}},
		{"one relay, plain mailer", outboxtest.Crashes{Relays: 1, CrashEvery: 7, Batch: 5, Stock: 50, Orders: 100}},
		{"three relays, de-duplicating mailer", outboxtest.Crashes{Relays: 3, CrashEvery: 40, Batch: 25, Stock: 500, Orders: 1000, Dedup: true}},
		{"three relays, plain mailer", outboxtest.Crashes{Relays: 3, CrashEvery: 40, Batch: 25, Stock: 500, Orders: 1000}},
		{"three relays that never crash", outboxtest.Crashes{Relays: 3, Batch: 25, Stock: 500, Orders: 1000}},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := fakes.NewStore()
			store.EnableOutbox()
			d := outboxtest.Drain(t, store, store, c.plan)
			d.Check(t, c.plan)
			t.Logf("%d rows, %d sent and not marked, %d incarnations, %d rounds", len(d.Rows), len(d.Unmarked), d.Incarnations, d.Rounds)
		})
	}
}
