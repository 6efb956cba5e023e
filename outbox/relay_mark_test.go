package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
)

// doneRecorder records the IDs of every Done call the relay makes, and refuses a call whose
// context has ended, as a real database does (the fake store ignores the context).
type doneRecorder struct {
	outbox.Store
	mu    sync.Mutex
	calls [][]string
}

func (s *doneRecorder) Done(ctx context.Context, ids ...string) error {
	s.mu.Lock()
	s.calls = append(s.calls, append([]string(nil), ids...))
	s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Store.Done(ctx, ids...)
}

func (s *doneRecorder) Calls() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.calls...)
}

func TestRelayMarksEachClaimsSentRowsInOneDone(t *testing.T) {
	for _, c := range []struct {
		name      string
		rows      int
		batch     int
		fail      int // index of the row whose send fails permanently, -1 for none
		wantCalls func(ids []string) [][]string
		wantDone  int
	}{
		{"every send succeeds: one call per claim", 5, 2, -1, func(ids []string) [][]string {
			return [][]string{ids[0:2], ids[2:4], ids[4:5]}
		}, 5},
		{"a failed send is not marked", 3, 3, 1, func(ids []string) [][]string {
			return [][]string{{ids[0], ids[2]}}
		}, 2},
		{"a claim with no send that succeeded marks nothing", 1, 1, 0, func([]string) [][]string { return nil }, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, c.rows)
			mail := r.send
			r.send = func(ctx context.Context, e domain.Event) error {
				if c.fail >= 0 && e.Identity().ID == r.ids[c.fail] {
					return fakes.ErrMailRejected
				}
				return mail(ctx, e)
			}
			store := &doneRecorder{Store: r.store}
			relay, err := outbox.New("r1", store, r.send, outbox.WithClock(r.clock), outbox.WithPoll(time.Hour), outbox.WithBatch(c.batch))
			require.NoError(t, err)
			stop := run(t, relay)
			r.idle(t, 1)
			require.NoError(t, stop())
			assert.Equal(t, c.wantCalls(r.ids), store.Calls(), "Done calls, by the IDs each marked")
			_, done := r.store.OutboxCounts()
			assert.Equal(t, c.wantDone, done, "rows done")
			assert.Equal(t, c.wantDone, relay.Stats().Sent, "Stats.Sent")
		})
	}
}

// A relay that dies after some sends of a claim and before its mark leaves every row it sent
// unmarked; the relay that takes the rows over after the lease sends exactly those again (and the
// rest once), and marks them all.
func TestACrashBeforeTheMarkResendsExactlyTheClaimsSentRows(t *testing.T) {
	r := newRig(t, 4)
	crashing := r.relay(t, "r1", outbox.WithBatch(4), outbox.WithHook(func(_ context.Context, at outbox.Point, _ string, row outbox.Row) error {
		if at == outbox.Sent && row.ID() == r.ids[2] {
			return outbox.ErrCrash
		}
		return nil
	}))
	_, wait := runWait(t, crashing)
	require.ErrorIs(t, wait(), outbox.ErrCrash)
	require.Equal(t, r.ids[:3], r.mailed(), "sent before the crash")
	_, done := r.store.OutboxCounts()
	require.Zero(t, done, "rows marked by the relay that crashed")

	r.clock.Advance(outbox.DefaultLease)
	next := r.relay(t, "r2")
	stop := run(t, next)
	r.idle(t, 1)
	require.NoError(t, stop())
	assert.Equal(t, append(append([]string{}, r.ids[:3]...), r.ids...), r.mailed(), "the three unmarked rows again, then the fourth")
	pending, done := r.store.OutboxCounts()
	assert.Equal(t, [2]int{0, 4}, [2]int{pending, done}, "pending and done rows")
}

// A relay stopped in the middle of a claim still marks the rows it had sent; the row whose send the
// stop cut short, and the rows after it, wait out the lease.
func TestAStoppedRelayMarksWhatItSent(t *testing.T) {
	r := newRig(t, 3)
	mail := r.send
	sending := make(chan struct{})
	r.send = func(ctx context.Context, e domain.Event) error {
		if e.Identity().ID == r.ids[1] {
			close(sending)
			<-ctx.Done()
			return ctx.Err()
		}
		return mail(ctx, e)
	}
	store := &doneRecorder{Store: r.store}
	relay, err := outbox.New("r1", store, r.send, outbox.WithClock(r.clock), outbox.WithPoll(time.Hour))
	require.NoError(t, err)
	stop := run(t, relay)
	<-sending
	require.NoError(t, stop())
	assert.Equal(t, r.ids[:1], r.mailed(), "mails")
	_, done := r.store.OutboxCounts()
	assert.Equal(t, 1, done, "rows done: the one sent before the stop")
	assert.Equal(t, outbox.Stats{Claims: 1, Claimed: 3, Sent: 1}, relay.Stats())
	now := r.clock.Now()
	rows, err := r.store.Claim(context.Background(), "r2", now.Add(outbox.DefaultLease-time.Nanosecond), now.Add(2*outbox.DefaultLease), 10)
	require.NoError(t, err)
	assert.Empty(t, rows, "the rest still leased to r1")
	rows, err = r.store.Claim(context.Background(), "r2", now.Add(outbox.DefaultLease), now.Add(2*outbox.DefaultLease), 10)
	require.NoError(t, err)
	assert.Equal(t, r.ids[1:], idsOf(rows), "free once r1's lease ended")
}

func idsOf(rows []outbox.Row) []string {
	ids := []string{}
	for _, row := range rows {
		ids = append(ids, row.ID())
	}
	return ids
}

// A send that went through while the relay was being stopped was delivered: the relay marks it
// done (within StopMarkTimeout) instead of leaving it to be sent a second time after the lease.
func TestASendThatSucceedsAsTheRelayStopsIsMarked(t *testing.T) {
	r := newRig(t, 2)
	mail := r.send
	sending := make(chan struct{})
	r.send = func(ctx context.Context, e domain.Event) error {
		if e.Identity().ID == r.ids[0] {
			close(sending)
			<-ctx.Done() // the stop arrives while the mail is on the wire, and the mail gets through
			return mail(context.WithoutCancel(ctx), e)
		}
		return mail(ctx, e)
	}
	relay, err := outbox.New("r1", r.store, r.send, outbox.WithClock(r.clock), outbox.WithPoll(time.Hour))
	require.NoError(t, err)
	stop := run(t, relay)
	<-sending
	require.NoError(t, stop())
	assert.Equal(t, r.ids[:1], r.mailed(), "mails")
	_, done := r.store.OutboxCounts()
	assert.Equal(t, 1, done, "rows done: the one whose send succeeded during the stop")
	assert.Equal(t, outbox.Stats{Claims: 1, Claimed: 2, Sent: 1}, relay.Stats())
}
