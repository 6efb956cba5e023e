package sqlite_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/internal/sqlstore/sqlstoretest"
	"github.com/stockbus/stockbus/sqlite"
)

func TestOutbox(t *testing.T) {
	sqlstoretest.TestOutbox(t, sqlstoretest.OutboxHarness{
		Open: func(t *testing.T) sqlstoretest.OutboxStore { return open(t) },
		Another: func(t *testing.T, s sqlstoretest.OutboxStore) sqlstoretest.OutboxStore {
			var seq int
			var name, path string
			require.NoError(t, s.(*sqlite.Store).DB().QueryRow("PRAGMA database_list").Scan(&seq, &name, &path))
			other, err := sqlite.Open(context.Background(), path)
			require.NoError(t, err)
			t.Cleanup(func() { _ = other.Close() })
			return other
		},
		// Relays of several processes on one file take turns for SQLite's write lock: one relay.
		Relays: 1,
		Downgrade: func(t *testing.T, s sqlstoretest.OutboxStore) {
			_, err := s.(*sqlite.Store).DB().Exec(`DROP TABLE event_log; DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN dead; ALTER TABLE outbox DROP COLUMN attempts; ALTER TABLE outbox DROP COLUMN reason;
ALTER TABLE outbox DROP COLUMN not_before; ALTER TABLE outbox DROP COLUMN claimed_by; ALTER TABLE outbox DROP COLUMN lease_until;
CREATE INDEX outbox_pending ON outbox(done, seq);
PRAGMA user_version = 1;`)
			require.NoError(t, err, "take the file back to version 1")
		},
		SchemaVersion: sqlite.SchemaVersion,
		Version: func(t *testing.T, s sqlstoretest.OutboxStore) (version int) {
			require.NoError(t, s.(*sqlite.Store).DB().QueryRow("PRAGMA user_version").Scan(&version))
			return version
		},
	})
}
