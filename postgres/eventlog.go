package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stockbus/stockbus/internal/sqlstore"
)

// LoggedEvent is a row of the event log: an event as its commit stored it (Seq is its
// position in commit order over every store on the database, from 1).
type LoggedEvent = sqlstore.LoggedEvent

// eventLog writes every pending event of the entries' products into the event log, in one
// statement of the commit's own transaction, whatever the dispatch strategy: a row is there if
// and only if the commit that recorded the event committed. That is what an accounting of
// deliveries compares against (what the mail sink or the broker holds), as Jepsen compares
// against a history.
func (w *writer) eventLog(entries []sqlstore.Entry) error {
	var ids, types, causes, payloads []string
	for _, en := range entries {
		for _, e := range en.P.Events {
			typ, payload, err := sqlstore.EncodeEvent(e)
			if err != nil {
				return fmt.Errorf("commit: event log: %w", err)
			}
			m := e.Identity()
			ids, types, causes, payloads = append(ids, m.ID), append(types, typ), append(causes, m.CausationID), append(payloads, payload)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// ORDER BY n makes the serial seqs follow the events' order.
	if _, err := w.exec(`INSERT INTO event_log (event_id, type, causation_id, payload)
		SELECT i, t, c, p::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e(i, t, c, p, n) ORDER BY n`,
		ids, types, causes, payloads); err != nil {
		return mapError("commit: event log", err)
	}
	return nil
}

// EventLog returns every event that a commit on this database stored, by any store or process,
// in commit order (for events of one product; commits of different products that overlap in time
// are in the order their inserts ran). The log is written under every strategy, outbox or not.
func (s *Store) EventLog(ctx context.Context) ([]LoggedEvent, error) {
	rows, err := s.pool.Query(ctx, "SELECT seq, type, causation_id, payload::text FROM event_log ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	var (
		out     []LoggedEvent
		l       LoggedEvent
		seq     int64
		payload string
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &l.Type, &l.CausationID, &payload}, func() error {
		e, err := sqlstore.DecodeEvent(l.Type, payload)
		if err != nil {
			return fmt.Errorf("event log row %d: %w", seq, err)
		}
		l.Seq, l.Event = uint64(seq), e
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	return out, nil
}
