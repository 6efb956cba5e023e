package sqlite_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sqlite"
)

// Every committed event is in the log, with its ID, type and cause, whether the outbox is on or
// not; under sync the mail's cause is the logged event.
func TestEventLogUnderEveryStrategy(t *testing.T) {
	for _, tt := range []struct {
		name   string
		outbox bool
	}{
		{"sync", false},
		{"outbox", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			mailer := fakes.NewMailer()
			var opts []service.Option
			if tt.outbox {
				s.EnableOutbox()
				opts = append(opts, service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
			}
			uow := service.Bootstrap(s, mailer, opts...)
			addBatch(t, s, "LAMP", "b1", 1)
			_, err := service.Allocate(ctx, uow, "o1", "LAMP", 1)
			require.NoError(t, err)
			_, err = service.Allocate(ctx, uow, "o2", "LAMP", 1)
			require.ErrorIs(t, err, domain.ErrOutOfStock)

			log, err := s.EventLog(ctx)
			require.NoError(t, err)
			require.Len(t, log, 2, "logged events")
			assert.Equal(t, []string{"Allocated", "OutOfStock"}, []string{log[0].Type, log[1].Type})
			assert.Less(t, log[0].Seq, log[1].Seq)
			assert.Equal(t, "o1", log[0].Event.(domain.Allocated).OrderID)
			assert.Equal(t, "b1", log[0].Event.(domain.Allocated).BatchRef)
			assert.Equal(t, "o2", log[1].Event.(domain.OutOfStock).OrderID)
			for _, l := range log {
				assert.NotEmpty(t, l.Event.Identity().ID, "logged event %+v carries its ID", l)
				assert.Equal(t, l.Event.Identity().CausationID, l.CausationID)
			}
			if tt.outbox {
				assert.Empty(t, mailer.Mails(), "mails under the outbox before any relay ran")
				rows := s.Outbox()
				require.Len(t, rows, 2)
				assert.Equal(t, log[1].Event.Identity().ID, rows[1].Event.Identity().ID, "the outbox row and the log row are one event")
				return
			}
			mails := mailer.Mails()
			require.Len(t, mails, 1)
			assert.Equal(t, log[1].Event.Identity().ID, mails[0].Cause.Identity().ID, "the mail's cause is the logged event")
		})
	}
}

// The log keeps the cause of an event recorded while handling another message.
func TestEventLogKeepsTheCause(t *testing.T) {
	s := open(t)
	uow := service.Bootstrap(s, fakes.NewMailer())
	addBatch(t, s, "LAMP", "b1", 2)
	_, err := service.Allocate(ctx, uow, "o1", "LAMP", 2)
	require.NoError(t, err)
	addBatch(t, s, "LAMP", "b2", 2)
	// Shrinking b1 deallocates o1 (Deallocated, a root) and its handler allocates it again in
	// b2 (Allocated, caused by the command the handler sent).
	require.NoError(t, service.ChangeBatchQuantity(ctx, uow, "b1", 1))
	log, err := s.EventLog(ctx)
	require.NoError(t, err)
	var types []string
	for _, l := range log {
		types = append(types, l.Type)
	}
	require.Equal(t, []string{"Allocated", "Deallocated", "Allocated"}, types)
	assert.Empty(t, log[1].CausationID, "the cause of the Deallocated, recorded by an entry point")
	assert.NotEmpty(t, log[2].CausationID, "the cause of the second allocation, recorded by a handler")
	assert.NotEqual(t, log[2].Event.Identity().ID, log[2].CausationID)
}

// A commit that does not commit leaves no row in the log: one that conflicts, and one cut short
// after any of its statements, the log's insert included. A commit that commits leaves its row.
func TestEventLogHoldsCommittedEventsOnly(t *testing.T) {
	t.Run("a conflicting commit", func(t *testing.T) {
		s := open(t)
		addBatch(t, s, "LAMP", "b1", 5)
		s.SetBeforeCommit(func(_ context.Context, skus []string) { s.Touch(skus[0]) })
		defer s.SetBeforeCommit(nil)
		_, err := service.Allocate(ctx, service.Bootstrap(s, fakes.NewMailer(), service.WithRetries(0)), "o1", "LAMP", 1)
		require.ErrorIs(t, err, service.ErrConcurrentUpdate)
		log, err := s.EventLog(ctx)
		require.NoError(t, err)
		assert.Empty(t, log, "logged events of a commit that conflicted")
	})
	t.Run("a commit cut short", func(t *testing.T) {
		for stop := 1; ; stop++ {
			s := open(t)
			s.EnableOutbox()
			addBatch(t, s, "LAMP", "b1", 5)
			ran := 0
			cctx, cancel := context.WithCancel(ctx)
			sqlite.SetAfterStatement(s, func(_ context.Context, n int) {
				ran = n
				if n == stop {
					cancel()
				}
			})
			uow := service.Bootstrap(s, fakes.NewMailer(), service.WithRetries(0),
				service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
			_, commitErr := service.Allocate(cctx, uow, "o1", "LAMP", 1)
			cancel()
			log, err := s.EventLog(ctx)
			require.NoError(t, err)
			assert.Equal(t, commitErr == nil, len(log) == 1, "cut after statement %d: commit error %v, %d logged events", stop, commitErr, len(log))
			assert.Equal(t, len(log), len(s.Outbox()), "cut after statement %d: the log and the outbox disagree", stop)
			if ran < stop {
				require.GreaterOrEqual(t, stop, 4, "statements of the commit (product, line, event log, outbox)")
				return
			}
		}
	})
}
