package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/service"
)

// rig is a fake store with n outbox rows (one Allocated, then OutOfStock), a manual clock and
// a fake mailer that the sender mails one mail per event through.
type rig struct {
	store  *fakes.Store
	ids    []string
	clock  *outboxtest.Clock
	mailer *fakes.Mailer
	send   outbox.Sender
}

func newRig(t *testing.T, n int, opts ...fakes.MailerOption) *rig {
	t.Helper()
	r := &rig{store: fakes.NewStore(), clock: outboxtest.NewClock(outboxtest.Start), mailer: fakes.NewMailer(opts...)}
	r.store.EnableOutbox()
	outboxtest.Orders(t, r.store, "LAMP", 1, n)
	for _, row := range r.store.Outbox() {
		r.ids = append(r.ids, row.ID())
	}
	r.send = func(ctx context.Context, e domain.Event) error {
		return r.mailer.Send(ctx, service.Mail{To: "x@example.com", Subject: fmt.Sprintf("%T", e), Cause: e})
	}
	return r
}

// mailed returns the cause IDs of the mails delivered, in order.
func (r *rig) mailed() []string {
	ids := []string{}
	for _, m := range r.mailer.Mails() {
		ids = append(ids, m.Cause.Identity().ID)
	}
	return ids
}

func (r *rig) relay(t *testing.T, name string, opts ...outbox.Option) *outbox.Relay {
	t.Helper()
	relay, err := outbox.New(name, r.store, r.send, append([]outbox.Option{outbox.WithClock(r.clock), outbox.WithPoll(time.Hour)}, opts...)...)
	require.NoError(t, err)
	return relay
}

// run starts relay.Run and returns a function that stops it and returns Run's error.
func run(t *testing.T, relay *outbox.Relay) (stop func() error) {
	t.Helper()
	stop, _ = runWait(t, relay)
	return stop
}

// runWait is run that also returns a function that waits for Run to return by itself.
func runWait(t *testing.T, relay *outbox.Relay) (stop, wait func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	var once sync.Once
	var err error
	wait = func() error {
		once.Do(func() { err = <-done })
		return err
	}
	stop = func() error {
		cancel()
		return wait()
	}
	t.Cleanup(func() { _ = stop() })
	return stop, wait
}

// idle waits until the clock's After has been called n times in all: relays wait only when
// they found nothing to claim. It fails the test after a few seconds, which only a relay that
// never waits (a spinning relay) or never gets there can cause.
func (r *rig) idle(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.clock.AwaitAfters(ctx, n), "waiting for wait number %d; the relay waited %d times", n, r.clock.Afters())
}

func TestRelaySendsInCommitOrderAndMarksDone(t *testing.T) {
	r := newRig(t, 5)
	relay := r.relay(t, "r1", outbox.WithBatch(2))
	stop := run(t, relay)
	r.idle(t, 1)
	require.NoError(t, stop())
	assert.Equal(t, r.ids, r.mailed(), "mails in commit order")
	pending, done := r.store.OutboxCounts()
	assert.Equal(t, [2]int{0, 5}, [2]int{pending, done}, "pending and done rows")
	assert.Equal(t, outbox.Stats{Claims: 4, Claimed: 5, Sent: 5}, relay.Stats(), "claims of 2, 2, 1 and none")
}

func TestRelayRetriesTransientFailuresAfterABackoff(t *testing.T) {
	r := newRig(t, 1, fakes.WithFaultPlan(func(n int) fakes.Fault {
		if n < 2 {
			return fakes.FailTransient
		}
		return fakes.NoFault
	}))
	relay := r.relay(t, "r1", outbox.WithBackoff(func(n int) time.Duration { return time.Duration(n) * time.Second }))
	run(t, relay)
	r.idle(t, 1)
	assert.Empty(t, r.mailed(), "first send failed")
	r.clock.Advance(time.Second) // the first backoff, well before the hour's poll
	r.idle(t, 2)
	assert.Empty(t, r.mailed(), "second send failed")
	r.clock.Advance(2*time.Second - time.Nanosecond)
	r.clock.Advance(time.Nanosecond)
	r.idle(t, 3)
	assert.Equal(t, r.ids, r.mailed(), "third send")
	assert.Equal(t, outbox.Stats{Claims: 6, Claimed: 3, Sent: 1, Retried: 2}, relay.Stats(), "each attempt: a claim that finds the row and one that finds nothing")
	dead, err := r.store.DeadLetters(context.Background())
	require.NoError(t, err)
	assert.Empty(t, dead)
}

func TestRelayParksFailedRows(t *testing.T) {
	for _, c := range []struct {
		name         string
		err          error // of every send of the first row
		maxAttempts  int
		wantAttempts int
		wantRetried  int
	}{
		{"a permanent failure at once", fakes.ErrMailRejected, 10, 1, 0},
		{"transient failures after the last attempt", fakes.ErrMailFailed, 3, 3, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, 2)
			mail := r.send
			r.send = func(ctx context.Context, e domain.Event) error {
				if e.Identity().ID == r.ids[0] {
					return c.err
				}
				return mail(ctx, e)
			}
			var reported []outbox.DeadLetter
			relay := r.relay(t, "r1", outbox.WithBatch(1), outbox.WithMaxAttempts(c.maxAttempts),
				outbox.WithBackoff(func(int) time.Duration { return time.Second }),
				outbox.WithOnDead(func(d outbox.DeadLetter) { reported = append(reported, d) }))
			stop := run(t, relay)
			for i := range c.wantRetried {
				r.idle(t, i+1)
				r.clock.Advance(time.Second)
			}
			r.idle(t, c.wantRetried+1)
			require.NoError(t, stop())
			assert.Equal(t, r.ids[1:], r.mailed(), "the other row is sent")
			dead, err := r.store.DeadLetters(context.Background())
			require.NoError(t, err)
			require.Len(t, dead, 1)
			assert.Equal(t, r.ids[0], dead[0].ID())
			assert.Equal(t, c.err.Error(), dead[0].Reason)
			assert.Equal(t, c.wantAttempts, dead[0].Attempts)
			assert.Equal(t, dead, reported, "reported as parked")
			s := relay.Stats()
			assert.Equal(t, [3]int{1, c.wantRetried, 1}, [3]int{s.Dead, s.Retried, s.Sent}, "dead, retried, sent")
		})
	}
}

// countingStore counts claims and cancels the run once there are more than a relay that waits
// could have made.
type countingStore struct {
	outbox.Store
	claims atomic.Int64
	limit  int64
	cancel context.CancelFunc
}

func (s *countingStore) Claim(ctx context.Context, relay string, now, until time.Time, limit int) ([]outbox.Row, error) {
	if s.claims.Add(1) > s.limit {
		s.cancel()
	}
	return s.Store.Claim(ctx, relay, now, until, limit)
}

func TestIdleRelayWaitsForANudgeOrItsPollInsteadOfSpinning(t *testing.T) {
	r := newRig(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	store := &countingStore{Store: r.store, limit: 100, cancel: cancel}
	relay, err := outbox.New("r1", store, r.send, outbox.WithClock(r.clock), outbox.WithPoll(time.Minute))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	r.idle(t, 1)
	assert.EqualValues(t, 1, store.claims.Load(), "claims before the first wait")
	outboxtest.Orders(t, r.store, "CHAIR", 1, 2) // committed, nobody told the relay
	assert.Empty(t, r.mailed(), "sent without a nudge or a poll")
	relay.Notify()
	r.idle(t, 2)
	assert.Len(t, r.mailed(), 2, "sent after the nudge")
	assert.EqualValues(t, 3, store.claims.Load(), "claims: the first, the nudged one, and the one that found nothing")
	outboxtest.Orders(t, r.store, "TABLE", 1, 1) // as if another process committed it
	r.clock.Advance(time.Minute)
	r.idle(t, 3)
	assert.Len(t, r.mailed(), 3, "sent at the fallback poll")
	assert.EqualValues(t, 5, store.claims.Load(), "claims after the poll")
}

func TestRunStopsWhenItsContextEnds(t *testing.T) {
	t.Run("while idle", func(t *testing.T) {
		r := newRig(t, 0)
		relay := r.relay(t, "r1")
		stop := run(t, relay)
		r.idle(t, 1)
		again := relay.Run(context.Background())
		assert.ErrorIs(t, again, outbox.ErrRunning, "a second Run while the first runs")
		assert.NoError(t, stop())
	})
	t.Run("while sending: the row is neither marked nor given back", func(t *testing.T) {
		r := newRig(t, 1, fakes.WithFaultPlan(func(int) fakes.Fault { return fakes.Hang }))
		sending := make(chan struct{})
		relay := r.relay(t, "r1", outbox.WithHook(func(_ context.Context, at outbox.Point, _ string, _ outbox.Row) error {
			if at == outbox.Claimed {
				close(sending)
			}
			return nil
		}))
		stop := run(t, relay)
		<-sending
		assert.NoError(t, stop())
		assert.Equal(t, outbox.Stats{Claims: 1, Claimed: 1}, relay.Stats())
		now := r.clock.Now()
		rows, err := r.store.Claim(context.Background(), "r2", now.Add(outbox.DefaultLease-time.Nanosecond), now.Add(2*outbox.DefaultLease), 10)
		require.NoError(t, err)
		assert.Empty(t, rows, "still leased to r1")
		rows, err = r.store.Claim(context.Background(), "r2", now.Add(outbox.DefaultLease), now.Add(2*outbox.DefaultLease), 10)
		require.NoError(t, err)
		require.Len(t, rows, 1, "free once r1's lease ended")
		assert.Zero(t, rows[0].Attempts, "no failure was recorded")
	})
}

func TestHooksSeeEveryPointAndCanCrashTheRelay(t *testing.T) {
	type step struct {
		at outbox.Point
		id string
	}
	for _, c := range []struct {
		name      string
		crashAt   outbox.Point
		wantSteps func(ids []string) []step
		wantMails int
		wantDone  int
	}{
		// The claim's sent rows are marked once its sends are over: the failed row's steps come
		// before the sent row's mark.
		{"no crash", 0, func(ids []string) []step {
			return []step{{outbox.Claimed, ids[0]}, {outbox.Sent, ids[0]}, {outbox.Claimed, ids[1]}, {outbox.Failed, ids[1]}, {outbox.Marked, ids[0]}}
		}, 1, 1},
		{"crash before the send", outbox.Claimed, func(ids []string) []step { return []step{{outbox.Claimed, ids[0]}} }, 0, 0},
		{"crash after the send, before the mark", outbox.Sent, func(ids []string) []step {
			return []step{{outbox.Claimed, ids[0]}, {outbox.Sent, ids[0]}}
		}, 1, 0},
		{"crash after the mark", outbox.Marked, func(ids []string) []step {
			return []step{{outbox.Claimed, ids[0]}, {outbox.Sent, ids[0]}, {outbox.Claimed, ids[1]}, {outbox.Failed, ids[1]}, {outbox.Marked, ids[0]}}
		}, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, 2, fakes.WithFaultPlan(func(n int) fakes.Fault {
				if n == 1 {
					return fakes.FailPermanent
				}
				return fakes.NoFault
			}))
			var steps []step
			relay := r.relay(t, "r1", outbox.WithHook(func(_ context.Context, at outbox.Point, relay string, row outbox.Row) error {
				assert.Equal(t, "r1", relay)
				steps = append(steps, step{at, row.ID()})
				if at == c.crashAt {
					return outbox.ErrCrash
				}
				return nil
			}))
			stop, wait := runWait(t, relay)
			if c.crashAt == 0 {
				r.idle(t, 1)
				assert.NoError(t, stop())
			} else {
				assert.ErrorIs(t, wait(), outbox.ErrCrash)
			}
			assert.Equal(t, c.wantSteps(r.ids), steps)
			assert.Len(t, r.mailed(), c.wantMails, "mails")
			_, done := r.store.OutboxCounts()
			assert.Equal(t, c.wantDone, done, "rows done")
		})
	}
}

func TestRelaySkipsRowsWhoseLeaseEndedMidBatch(t *testing.T) {
	r := newRig(t, 3)
	first := true
	relay := r.relay(t, "r1", outbox.WithLease(time.Minute), outbox.WithHook(func(context.Context, outbox.Point, string, outbox.Row) error {
		if first {
			first = false
			r.clock.Advance(time.Minute) // the first send takes the whole lease
		}
		return nil
	}))
	run(t, relay)
	r.idle(t, 1)
	assert.Equal(t, r.ids, r.mailed(), "each row sent once, the skipped ones after claiming them again")
	s := relay.Stats()
	assert.Equal(t, [3]int{2, 2, 3}, [3]int{s.Skipped, s.Claims - 1, s.Sent}, "skipped, claims that found rows, sent")
}

// With several relays, commit order holds within one relay's claims, not across relays: a relay
// slow on its batch lets another send later rows first.
func TestSeveralRelaysKeepNoOrderAcrossRelays(t *testing.T) {
	r := newRig(t, 4)
	release := make(chan struct{})
	holding := make(chan struct{})
	var mu sync.Mutex
	sentBy := map[string][]string{}
	sender := func(name string, hold bool) outbox.Sender {
		return func(ctx context.Context, e domain.Event) error {
			if hold {
				hold = false
				close(holding)
				<-release
			}
			mu.Lock()
			sentBy[name] = append(sentBy[name], e.Identity().ID)
			mu.Unlock()
			return r.send(ctx, e)
		}
	}
	slow, err := outbox.New("slow", r.store, sender("slow", true), outbox.WithClock(r.clock), outbox.WithPoll(time.Hour), outbox.WithBatch(2))
	require.NoError(t, err)
	fast, err := outbox.New("fast", r.store, sender("fast", false), outbox.WithClock(r.clock), outbox.WithPoll(time.Hour))
	require.NoError(t, err)
	run(t, slow)
	<-holding
	run(t, fast)
	r.idle(t, 1)
	close(release)
	r.idle(t, 2)
	ids := r.ids
	assert.Equal(t, []string{ids[2], ids[3], ids[0], ids[1]}, r.mailed(), "mail order")
	assert.Equal(t, map[string][]string{"slow": ids[:2], "fast": ids[2:]}, sentBy, "each relay in commit order")
}

func TestNewRefusesBadOptions(t *testing.T) {
	store := fakes.NewStore()
	send := func(context.Context, domain.Event) error { return nil }
	for _, c := range []struct {
		name  string
		relay string
		store outbox.Store
		send  outbox.Sender
		opts  []outbox.Option
	}{
		{"empty name", "", store, send, nil},
		{"no store", "r1", nil, send, nil},
		{"no sender", "r1", store, nil, nil},
		{"no clock", "r1", store, send, []outbox.Option{outbox.WithClock(nil)}},
		{"no backoff", "r1", store, send, []outbox.Option{outbox.WithBackoff(nil)}},
		{"zero lease", "r1", store, send, []outbox.Option{outbox.WithLease(0)}},
		{"negative poll", "r1", store, send, []outbox.Option{outbox.WithPoll(-time.Second)}},
		{"zero batch", "r1", store, send, []outbox.Option{outbox.WithBatch(0)}},
		{"negative max attempts", "r1", store, send, []outbox.Option{outbox.WithMaxAttempts(-1)}},
		{"zero sends", "r1", store, send, []outbox.Option{outbox.WithSends(0)}},
		{"negative sends", "r1", store, send, []outbox.Option{outbox.WithSends(-2)}},
		{"too many sends", "r1", store, send, []outbox.Option{outbox.WithSends(outbox.MaxSends + 1)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			relay, err := outbox.New(c.relay, c.store, c.send, c.opts...)
			assert.ErrorIs(t, err, outbox.ErrInvalid)
			assert.Nil(t, relay)
		})
	}
}

func TestDefaultRetryableFollowsTheMailCategories(t *testing.T) {
	for _, c := range []struct {
		name      string
		err       error
		wantRetry bool
	}{
		{"transient", fakes.ErrMailFailed, true},
		{"unknown outcome", fakes.ErrSendTimeout, true},
		{"no category", errors.New("boom"), true},
		{"a sender's own deadline", context.DeadlineExceeded, true},
		{"permanent", fakes.ErrMailRejected, false},
		{"permanent, wrapped", fmt.Errorf("send: %w", service.ErrMailPermanent), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, 1)
			relay, err := outbox.New("r1", r.store, func(context.Context, domain.Event) error { return c.err },
				outbox.WithClock(r.clock), outbox.WithPoll(time.Hour))
			require.NoError(t, err)
			run(t, relay)
			r.idle(t, 1)
			s := relay.Stats()
			want := [2]int{0, 1}
			if c.wantRetry {
				want = [2]int{1, 0}
			}
			assert.Equal(t, want, [2]int{s.Retried, s.Dead}, "retried, dead after %v", c.err)
		})
	}
}
