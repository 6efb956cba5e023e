// Package sqlstoretest holds the contracts the SQL stores (sqlite, postgres) pass beyond the
// ports' own: TestOutbox, the outbox table's, and TestEventLog, the event log's. The event log:
// every committed event logged in its commit's transaction under every strategy, with its ID,
// type and cause, and nothing logged by a commit that did not commit.
package sqlstoretest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/internal/sqlstore"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
)

// Store is what the contract needs of a SQL store.
type Store interface {
	service.Store
	EnableOutbox()
	Outbox() []outbox.Row
	SetBeforeCommit(h service.CommitHook)
	Touch(sku string) bool
	EventLog(ctx context.Context) ([]sqlstore.LoggedEvent, error)
}

// Harness opens a new, empty store for each check (closed when the test ends) and sets the
// store's after-statement hook, which runs after each statement of a commit with its number.
type Harness struct {
	Open              func(t *testing.T) Store
	SetAfterStatement func(s Store, f func(ctx context.Context, n int))
}

// TestEventLog runs the event log's contract against h's stores.
func TestEventLog(t *testing.T, h Harness) {
	t.Run("every strategy", func(t *testing.T) { underEveryStrategy(t, h) })
	t.Run("the cause", func(t *testing.T) { keepsTheCause(t, h) })
	t.Run("committed events only", func(t *testing.T) { holdsCommittedEventsOnly(t, h) })
}

var ctx = context.Background()

func addBatch(t *testing.T, s service.Store, sku, ref string, qty int) {
	t.Helper()
	require.NoError(t, service.AddBatch(ctx, service.Bootstrap(s, fakes.NewMailer()), ref, sku, qty, time.Time{}))
}

// Every committed event is in the log, with its ID, type and cause, whether the outbox is on or
// not; under sync the mail's cause is the logged event.
func underEveryStrategy(t *testing.T, h Harness) {
	for _, tt := range []struct {
		name   string
		outbox bool
	}{
		{"sync", false},
		{"outbox", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := h.Open(t)
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
func keepsTheCause(t *testing.T, h Harness) {
	s := h.Open(t)
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
func holdsCommittedEventsOnly(t *testing.T, h Harness) {
	t.Run("a conflicting commit", func(t *testing.T) {
		s := h.Open(t)
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
			s := h.Open(t)
			s.EnableOutbox()
			addBatch(t, s, "LAMP", "b1", 5)
			ran := 0
			cctx, cancel := context.WithCancel(ctx)
			h.SetAfterStatement(s, func(_ context.Context, n int) {
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
