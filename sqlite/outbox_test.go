package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sqlite"
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

// A database at schema version 1 (an outbox without claims) is upgraded on Open, its rows kept
// and claimable.
func TestOpenUpgradesAVersion1Outbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stockbus.db")
	s, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	s.EnableOutbox()
	outboxtest.Orders(t, s, "LAMP", 1, 2)
	_, err = s.DB().Exec(`DROP TABLE event_log; DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN dead; ALTER TABLE outbox DROP COLUMN attempts; ALTER TABLE outbox DROP COLUMN reason;
ALTER TABLE outbox DROP COLUMN not_before; ALTER TABLE outbox DROP COLUMN claimed_by; ALTER TABLE outbox DROP COLUMN lease_until;
CREATE INDEX outbox_pending ON outbox(done, seq);
PRAGMA user_version = 1;`)
	require.NoError(t, err, "take the file back to version 1")
	require.NoError(t, s.Close())

	s, err = sqlite.Open(context.Background(), path)
	require.NoError(t, err, "upgrade")
	defer func() { _ = s.Close() }()
	var version int
	require.NoError(t, s.DB().QueryRow("PRAGMA user_version").Scan(&version))
	assert.Equal(t, sqlite.SchemaVersion, version)
	rows, err := s.Claim(context.Background(), "r1", outboxtest.Start, outboxtest.Start.Add(time.Minute), 10)
	require.NoError(t, err)
	assert.Len(t, rows, 2, "the version 1 rows, claimable")
}
