package sqlite

import (
	"context"
	"fmt"

	"github.com/stockbus/stockbus/internal/sqlstore"
)

// LoggedEvent is a row of the event log: an event as its commit stored it (Seq is its
// position in commit order over every store on the database, from 1).
type LoggedEvent = sqlstore.LoggedEvent

// eventLog writes every pending event of the entries' products into the event log, in the
// commit's own transaction, whatever the dispatch strategy: a row is there if and only if the
// commit that recorded the event committed (see the postgres package's twin).
func (w *writer) eventLog(entries []sqlstore.Entry) error {
	for _, en := range entries {
		for _, e := range en.P.Events {
			typ, payload, err := sqlstore.EncodeEvent(e)
			if err != nil {
				return fmt.Errorf("commit: event log: %w", err)
			}
			m := e.Identity()
			if _, err := w.exec("INSERT INTO event_log (event_id, type, causation_id, payload) VALUES (?, ?, ?, ?)",
				m.ID, typ, m.CausationID, payload); err != nil {
				return mapError("commit: event log", err)
			}
		}
	}
	return nil
}

// EventLog returns every event that a commit on this file stored, by any store or process, in
// commit order. The log is written under every strategy, outbox or not.
func (s *Store) EventLog(ctx context.Context) ([]LoggedEvent, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT seq, type, causation_id, payload FROM event_log ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []LoggedEvent
	for rows.Next() {
		var (
			l       LoggedEvent
			seq     int64
			payload string
		)
		if err := rows.Scan(&seq, &l.Type, &l.CausationID, &payload); err != nil {
			return nil, fmt.Errorf("read event log: %w", err)
		}
		e, err := sqlstore.DecodeEvent(l.Type, payload)
		if err != nil {
			return nil, fmt.Errorf("event log row %d: %w", seq, err)
		}
		l.Seq, l.Event = uint64(seq), e
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	return out, nil
}
