package sqlite_test

import (
	"testing"

	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/service"
)

func TestOutboxContract(t *testing.T) {
	outboxtest.TestStore(t, func(t *testing.T) (service.Store, outbox.Store) {
		s := open(t)
		s.EnableOutbox()
		return s, s
	})
}

// The done-when: 1 relay(s) on the hot sku (a batch of 500, 1,000 orders of 1: 500
// Allocated and 500 OutOfStock rows), each incarnation crashing after its 40th send and before
// marking it, restarted under a new name and left to wait out its dead predecessor's lease.
func TestCrashedRelaysLoseNothing(t *testing.T) {
	for _, c := range []struct {
		name  string
		dedup bool
	}{
		{"de-duplicating mailer: no mail lost or duplicated", true},
		{"plain mailer: the duplicates are the rows sent and not marked", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			s.EnableOutbox()
			plan := outboxtest.Crashes{Relays: 1, CrashEvery: 40, Batch: 25, Stock: 500, Orders: 1000, Dedup: c.dedup}
			d := outboxtest.Drain(t, s, s, plan)
			d.Check(t, plan)
			t.Logf("%d rows, %d sent and not marked, %d incarnations, %d rounds", len(d.Rows), len(d.Unmarked), d.Incarnations, d.Rounds)
		})
	}
}
