package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/service"
)

func TestOutboxContract(t *testing.T) {
	outboxtest.TestStore(t, func(t *testing.T) (service.Store, outbox.Store) {
		s := open(t)
		s.EnableOutbox()
		return s, s
	})
}

// The done-when: 3 relays, each on a store of its own (a pool, as a process would have)
// over one database, on the hot sku (a batch of 500, 1,000 orders of 1: 500 Allocated and 500
// OutOfStock rows), each incarnation crashing after its 40th send and before marking it, restarted
// under a new name and left to wait out its dead predecessor's lease.
func TestCrashedRelaysLoseNothing(t *testing.T) {
	for _, c := range []struct {
		name       string
		dedup      bool
		crashEvery int
	}{
		{"de-duplicating mailer: no mail lost or duplicated", true, 40},
		{"plain mailer: the duplicates are the rows sent and not marked", false, 40},
		{"no crash: no duplicate, and each relay sends in commit order", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			s.EnableOutbox()
			stores := []outbox.Store{s, sameDatabase(t, s), sameDatabase(t, s)}
			plan := outboxtest.Crashes{Relays: 3, CrashEvery: c.crashEvery, Batch: 25, Stock: 500, Orders: 1000, Dedup: c.dedup, Stores: stores}
			d := outboxtest.Drain(t, s, s, plan)
			d.Check(t, plan)
			t.Logf("%d rows, %d sent and not marked, %d incarnations, %d rounds", len(d.Rows), len(d.Unmarked), d.Incarnations, d.Rounds)
		})
	}
}

// sameDatabase opens another store on s's database, closed when the test ends.
func sameDatabase(t *testing.T, s *postgres.Store) *postgres.Store {
	t.Helper()
	var db string
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT current_database()").Scan(&db))
	u, err := url.Parse(server(t))
	require.NoError(t, err)
	u.Path = "/" + db
	other, err := postgres.Open(ctx, u.String())
	require.NoError(t, err)
	t.Cleanup(other.Close)
	return other
}

// A claim passes over rows another transaction has locked (another relay's claim in flight)
// instead of waiting for them: FOR UPDATE SKIP LOCKED.
func TestClaimSkipsRowsLockedByAnotherClaim(t *testing.T) {
	s := open(t)
	s.EnableOutbox()
	outboxtest.Orders(t, s, "LAMP", 1, 3)
	rows := s.Outbox()
	require.Len(t, rows, 3)
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "SELECT seq FROM outbox WHERE seq = $1 FOR UPDATE", int64(rows[0].Seq))
	require.NoError(t, err)

	// A guard against a hang, not a measurement: a claim that waits for the lock never returns.
	guard, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	now := outboxtest.Start
	got, err := s.Claim(guard, "r1", now, now.Add(time.Minute), 10)
	require.NoError(t, err, "claim beside a locked row")
	assert.Equal(t, []uint64{rows[1].Seq, rows[2].Seq}, seqs(got), "the unlocked rows")
	require.NoError(t, tx.Rollback(ctx))
	got, err = s.Claim(ctx, "r2", now, now.Add(time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []uint64{rows[0].Seq}, seqs(got), "the row, once unlocked")
}

func seqs(rows []outbox.Row) []uint64 {
	out := []uint64{}
	for _, r := range rows {
		out = append(out, r.Seq)
	}
	return out
}

// A database at schema version 1 (an outbox without claims) is upgraded on Open, its rows kept
// and claimable.
func TestOpenUpgradesAVersion1Outbox(t *testing.T) {
	s := open(t)
	s.EnableOutbox()
	outboxtest.Orders(t, s, "LAMP", 1, 2)
	_, err := s.Pool().Exec(ctx, `DROP TABLE event_log;
DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN dead, DROP COLUMN attempts, DROP COLUMN reason,
	DROP COLUMN not_before, DROP COLUMN claimed_by, DROP COLUMN lease_until;
CREATE INDEX outbox_pending ON outbox(seq) WHERE NOT done;
UPDATE stockbus_schema SET version = 1`)
	require.NoError(t, err, "take the database back to version 1")
	again := sameDatabase(t, s)
	var version int
	require.NoError(t, again.Pool().QueryRow(ctx, "SELECT version FROM stockbus_schema").Scan(&version))
	assert.Equal(t, postgres.SchemaVersion, version)
	rows, err := again.Claim(ctx, "r1", outboxtest.Start, outboxtest.Start.Add(time.Minute), 10)
	require.NoError(t, err)
	assert.Len(t, rows, 2, "the version 1 rows, claimable")
}
