package dispatch

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/faults"
)

// MaxRelays is the most outbox relays a run may have (Options.Relays, sim.Config.Relays).
const MaxRelays = 64

// The settings of the outbox strategy's relays.
const (
	// relayLease is how long a relay's claim holds its rows. It is far longer than any batch
	// takes (relayBatch sends of at most a minute each), so within one life of the process no
	// lease ends and no two relays ever hold the same row: every repeated send is a crash's.
	relayLease = time.Hour
	// relayBatch is how many rows one claim takes: small, so that several relays share a
	// backlog instead of the first one claiming all of it.
	relayBatch = 16
	// relayPoll is how long an idle relay waits before it claims anyway. Commits nudge the relays
	// (Dispatch), rows they gave back wake them when due and a restarted process's relays claim
	// at once, so the poll is a fallback only.
	relayPoll = 50 * time.Millisecond
)

// relayBackoff is the wait before attempt n+1 of a row whose n-th send failed.
func relayBackoff(attempt int) time.Duration {
	return min(time.Duration(attempt)*100*time.Microsecond, 10*time.Millisecond)
}

// outboxStrategy lets the store keep events in the commit, and runs the library's relay on them:
// Relays outbox.Relay goroutines share the store's outbox table (outbox.Store), each claiming a
// few rows at a time, handing each row to the bus (Host.Deliver, which mails or publishes it) and
// marking it done. Commits nudge the relays (Dispatch calls Relay.Notify). Each relay has
// Options.RelaySends sends in flight at once (outbox.WithSends; sim sets it to -handlers, as
// async has that many handlers and as the simulator's own relay had senders before it ran the
// library's, but to 1 with reallocation chains, which need commit order): the strategies then
// meet the same mailer with the same concurrency, and one relay drains RelaySends times faster
// than one send at a time would (a 5 ms mailer: ~800 mails/s with 4 instead of ~200). Each slot is an
// actor of its own ("r0", "r0.1", ...; "r0.1@2" in the third life), with its own log and crash
// visits, since an actor's log takes no lock.
//
// A crash kills the process and so every relay in it, between the steps the world can see: a
// relay that dies leaves its claimed rows leased to its name. The restarted process (Start) runs
// new relays under new names ("r0@2"), whose clock is one lease ahead of the dead ones': the rows
// the dead relays held are theirs at once, as they would be after the lease on a real clock, and
// no wall-clock wait makes a run slower or its history depend on the machine. So a row sent and
// not marked when its relay died (sim.CrashOp.Unmarked) is sent again, once per crash that caught it,
// and the mailer's de-duplication drops the repeat.
//
// Order: one relay starts its sends in the order it claims the rows, oldest first, but with
// RelaySends > 1 a send may overtake an older one still in flight, so mails keep commit order only
// with -handlers 1 and one relay (but for rows sent again after a failure or a crash). With
// several relays claims of 16 rows go to whichever relay asks, so a newer row may also be mailed
// before an older one that another relay holds.
type outboxStrategy struct {
	relays int
	sends  int // per relay
	dedup  bool

	h     Host
	store Store
	cur   atomic.Pointer[outboxLife]
	lives []*outboxLife // guarded by the run's crash lock; read by Stop once the faults ended
	idle  chan struct{} // a relay's claim found nothing: Stop looks at the counts again
	wg    sync.WaitGroup

	committed, done, maxBacklog, errs atomic.Int64
	drainRounds                       atomic.Int64 // Stop's looks at the counts, for the test that it waits
}

var _ Strategy = (*outboxStrategy)(nil)

func newOutbox(o Options) Strategy {
	return &outboxStrategy{relays: o.Relays, sends: min(max(o.RelaySends, 1), outbox.MaxSends), dedup: o.Dedup}
}

// outboxLife is the relays of one life of the process.
type outboxLife struct {
	ctx    context.Context    // the life's: ends with its crash or the run's interruption
	stop   context.CancelFunc // ends the relays (and is called when the life ends)
	relays []*outbox.Relay
}

// Promise: at least once, mail and publication (the rows survive every crash and the relays retry
// until the send goes through). Mail: at most once while the mailer de-duplicates by event id.
// Publication: not at most once: a relay that crashed between publishing a row and marking it
// done publishes it again, and the publisher does not de-duplicate (a subscriber must).
func (s *outboxStrategy) Promise() Promise {
	return Promise{Delivered: true, NoLoss: true, NoDuplicate: s.dedup}
}

// Durable is true: the commit stores the events as outbox rows.
func (s *outboxStrategy) Durable() bool { return true }

// Middleware is none: the relays retry a failed send themselves.
func (s *outboxStrategy) Middleware() []service.Middleware { return nil }

// MailerOptions make the mailer de-duplicate by event id, unless Options.Dedup is off.
func (s *outboxStrategy) MailerOptions() []fakes.MailerOption {
	if !s.dedup {
		return nil
	}
	return []fakes.MailerOption{fakes.WithDedup()}
}

// Start starts the relays of one life. Each is named after its actor ("r1", "r1@3" in the
// fourth life): the name owns its claims, so the relays of a later life never act for the dead.
func (s *outboxStrategy) Start(ctx context.Context, h Host) error {
	if len(s.lives) == 0 {
		s.h, s.store = h, h.Store()
		s.store.EnableOutbox()
		s.idle = make(chan struct{}, 1)
	}
	n := len(s.lives)
	relayCtx, stop := context.WithCancel(ctx)
	l := &outboxLife{ctx: ctx, stop: stop}
	clock := lifeClock{ahead: time.Duration(n) * relayLease}
	for i := range s.relays {
		name := "r" + strconv.Itoa(i)
		if n > 0 {
			name += "@" + strconv.Itoa(n)
		}
		actors := make(slotActors, max(s.sends, 1))
		for k := range actors {
			actor := "r" + strconv.Itoa(i)
			if k > 0 {
				actor += "." + strconv.Itoa(k)
			}
			actors[k] = h.Actor(relayCtx, actor)
		}
		actor := actors[0] // Run's own: it claims and marks, and slot 0 sends
		relay, err := outbox.New(name, relayStore{s}, actors.send(s), outbox.WithClock(clock),
			outbox.WithLease(relayLease), outbox.WithPoll(relayPoll), outbox.WithBatch(relayBatch),
			outbox.WithSends(len(actors)), outbox.WithMaxAttempts(0), outbox.WithBackoff(relayBackoff),
			outbox.WithRetryable(retryable), outbox.WithHook(actors.hook(s)))
		if err != nil {
			stop()
			return err
		}
		l.relays = append(l.relays, relay)
		s.wg.Go(func() { _ = relay.Run(actor) }) // it returns when its life ends, or crashed
	}
	s.lives = append(s.lives, l)
	s.cur.Store(l)
	return nil
}

// retryable: every failed send is tried again but one the mailer calls permanent (none of the
// fake mailer's are): the outbox promises at least once.
func retryable(err error) bool { return !errors.Is(err, service.ErrMailPermanent) }

// slotActors are the actors of one relay's send slots (outbox.Slot), by slot: the context each
// of its sends and their hooks run as. Their contexts end with the relay's life, as Run's does.
type slotActors []context.Context

// of returns the actor of the send or hook whose context is ctx: its slot's, or, outside a slot
// (the Marked hook, on Run's goroutine), ctx itself, which is slot 0's actor.
func (a slotActors) of(ctx context.Context) context.Context {
	if slot, ok := outbox.Slot(ctx); ok && slot < len(a) {
		return a[slot]
	}
	return ctx
}

// send is a relay's Sender: the bus, on behalf of the slot's actor.
func (a slotActors) send(s *outboxStrategy) outbox.Sender {
	return func(ctx context.Context, e domain.Event) error { return s.h.Deliver(a.of(ctx), e) }
}

// hook is a relay's Hook: the strategy's, as the slot's actor.
func (a slotActors) hook(s *outboxStrategy) outbox.Hook {
	return func(ctx context.Context, at outbox.Point, relay string, row outbox.Row) error {
		return s.hook(a.of(ctx), at, relay, row)
	}
}

// hook is where the simulated process crashes in a relay, and where a relay of a process that
// died stops: right after a send that succeeded (RelaySent, before the mark), and at any point
// once its process is dead.
func (s *outboxStrategy) hook(ctx context.Context, at outbox.Point, _ string, _ outbox.Row) error {
	if !s.h.Alive(ctx) {
		return outbox.ErrCrash
	}
	switch at {
	case outbox.Sent:
		if s.h.Crash(ctx, faults.RelaySent) {
			return outbox.ErrCrash
		}
	case outbox.Failed:
		s.errs.Add(1)
	}
	return nil
}

// Dispatch only nudges the relays: the events are already in the outbox, stored by the commit.
func (s *outboxStrategy) Dispatch(_ context.Context, events []domain.Event) error {
	backlog := s.committed.Add(int64(len(events))) - s.done.Load()
	for old := s.maxBacklog.Load(); backlog > old && !s.maxBacklog.CompareAndSwap(old, backlog); old = s.maxBacklog.Load() {
	}
	for _, r := range s.cur.Load().relays {
		r.Notify()
	}
	return nil
}

// Stop drains: it waits until the outbox holds no pending row, looking at the counts only when a
// relay found nothing to claim (no polling), or until the live process's context ends. Then it
// stops the relays and waits for every relay of every life.
func (s *outboxStrategy) Stop() {
	l := s.cur.Load() // the last life: nothing crashes once the faults ended
	for {
		s.drainRounds.Add(1)
		if pending, _ := s.store.OutboxCounts(); pending == 0 {
			break
		}
		select {
		case <-s.idle:
			continue
		case <-l.ctx.Done():
		}
		break
	}
	for _, l := range s.lives {
		l.stop()
	}
	s.wg.Wait()
}

// Stats reports the most rows pending, the rows still pending, the failed sends and store steps,
// and the lives.
func (s *outboxStrategy) Stats() Stats {
	pending, _ := s.store.OutboxCounts()
	return Stats{MaxDepth: int(s.maxBacklog.Load()), Pending: pending, HandlerErrors: s.errs.Load(), Lives: len(s.lives)}
}

// lifeClock is the clock of one life's relays: the system clock, ahead by one lease per earlier
// life, so that a restarted process's relays find the dead ones' leases over.
type lifeClock struct{ ahead time.Duration }

func (c lifeClock) Now() time.Time                         { return time.Now().Add(c.ahead) }
func (c lifeClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// relayStore is the outbox table as the relays of the simulated process see it. Marking,
// retrying and parking a row are steps of the relay's process: a relay whose process died does
// none of them, and a mark is recorded with the run (Host.Marked) atomically with crashes, so
// CrashOp.Unmarked is exact. A step whose store call fails is tried again while the process
// lives (a row left claimed would wait out a lease no run lasts). Claims are not steps: a dead
// relay's claim is harmless, since the next life's relays find its lease over.
type relayStore struct{ s *outboxStrategy }

var _ outbox.Store = relayStore{}

func (rs relayStore) Claim(ctx context.Context, relay string, now, until time.Time, limit int) ([]outbox.Row, error) {
	rows, err := rs.s.store.Claim(ctx, relay, now, until, limit)
	if err == nil && len(rows) == 0 {
		select {
		case rs.s.idle <- struct{}{}:
		default:
		}
	}
	return rows, err
}

func (rs relayStore) Done(ctx context.Context, ids ...string) error {
	return rs.step(ctx, func() error {
		err := rs.s.store.Done(ctx, ids...)
		if err == nil {
			rs.s.h.Marked(ids...)
			rs.s.done.Add(int64(len(ids)))
		}
		return err
	})
}

func (rs relayStore) Retry(ctx context.Context, relay, id string, notBefore time.Time, reason string) error {
	return rs.step(ctx, func() error { return rs.s.store.Retry(ctx, relay, id, notBefore, reason) })
}

func (rs relayStore) Dead(ctx context.Context, relay, id, reason string) error {
	return rs.step(ctx, func() error { return rs.s.store.Dead(ctx, relay, id, reason) })
}

func (rs relayStore) DeadLetters(ctx context.Context) ([]outbox.DeadLetter, error) {
	return rs.s.store.DeadLetters(ctx)
}

// step runs a store call as a step of the relay's process, again after a failure until it
// succeeds, the row is not the relay's (outbox.ErrNotClaimed), or the process or run ends.
func (rs relayStore) step(ctx context.Context, call func() error) error {
	for attempt := 1; ; attempt++ {
		var err error
		if !rs.s.h.Step(ctx, func() { err = call() }) {
			return ErrDied
		}
		if err == nil || errors.Is(err, outbox.ErrNotClaimed) || errors.Is(err, outbox.ErrInvalid) || ctx.Err() != nil {
			return err
		}
		rs.s.errs.Add(1)
		if sleep(ctx, relayBackoff(attempt)) != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
