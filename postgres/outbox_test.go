package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/internal/sqlstore/sqlstoretest"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/postgres"
)

func TestOutbox(t *testing.T) {
	sqlstoretest.TestOutbox(t, sqlstoretest.OutboxHarness{
		Open: func(t *testing.T) sqlstoretest.OutboxStore { return open(t) },
		Another: func(t *testing.T, s sqlstoretest.OutboxStore) sqlstoretest.OutboxStore {
			return sameDatabase(t, s.(*postgres.Store))
		},
		// Each relay on a pool of its own over one database, as in separate processes.
		Relays: 3,
		Downgrade: func(t *testing.T, s sqlstoretest.OutboxStore) {
			_, err := s.(*postgres.Store).Pool().Exec(ctx, `DROP TABLE event_log;
DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN dead, DROP COLUMN attempts, DROP COLUMN reason,
	DROP COLUMN not_before, DROP COLUMN claimed_by, DROP COLUMN lease_until;
CREATE INDEX outbox_pending ON outbox(seq) WHERE NOT done;
UPDATE stockbus_schema SET version = 1`)
			require.NoError(t, err, "take the database back to version 1")
		},
		SchemaVersion: postgres.SchemaVersion,
		Version: func(t *testing.T, s sqlstoretest.OutboxStore) (version int) {
			require.NoError(t, s.(*postgres.Store).Pool().QueryRow(ctx, "SELECT version FROM stockbus_schema").Scan(&version))
			return version
		},
	})
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
