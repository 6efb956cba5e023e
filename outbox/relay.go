package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// Defaults and limits of a Relay.
const (
	// DefaultLease is how long a claim holds its rows: a relay that dies mid-batch leaves them to
	// the others this long after it claimed them. It must cover the sends of one batch.
	DefaultLease = 30 * time.Second
	// DefaultPoll is how long an idle relay waits for a Notify before it looks at the table
	// anyway, for rows committed by other processes (whose commits cannot nudge it), rows
	// retried by other relays, and leases of dead relays that ended.
	DefaultPoll = 5 * time.Second
	// DefaultBatch is how many rows one claim takes, and so the most rows one mark (one
	// Store.Done call) records, and the most that a crash before the mark makes go out again.
	DefaultBatch = 100
	// DefaultMaxAttempts is how many failed sends park a row as a dead letter even when every
	// failure was transient.
	DefaultMaxAttempts = 10
	// DefaultSends is how many rows a relay sends at once (WithSends): one, so that a relay's
	// sends keep commit order, which a receiver without de-duplication or versioning may rely on.
	// A relay then delivers at most one row per send latency (200 rows/s against a 5 ms mailer);
	// raise it when that is too slow and mail order within a claim does not matter.
	DefaultSends = 1
	// MaxSends is the most sends a relay may have in flight (WithSends).
	MaxSends = 1024
	// StopMarkTimeout is how long a relay whose context ended may still spend marking done the
	// rows of its claim that it had already sent: they were delivered, and a stop should not make
	// them go out again after the lease.
	StopMarkTimeout = 10 * time.Second
)

// Sender delivers one event. It returns nil only when the event was delivered (or a receiver
// de-duplicating by event ID already had it). Its errors are classified by the relay's
// retryable function (service.MailRetryable's categories by default).
type Sender func(ctx context.Context, e domain.Event) error

// BusSender hands each event to the bus's handlers, as the unit of work would have after commit.
func BusSender(bus *service.Bus) Sender {
	return func(ctx context.Context, e domain.Event) error { return bus.Handle(ctx, e) }
}

// PublisherSender publishes each event on channel.
func PublisherSender(p service.Publisher, channel string) Sender {
	return func(ctx context.Context, e domain.Event) error { return p.Publish(ctx, channel, e) }
}

// Point is a place in a row's trip through a relay where a Hook runs.
type Point int

// The points of a row's trip.
const (
	// Claimed: the row was claimed, holds a send slot (Slot) and is about to be sent.
	Claimed Point = iota + 1
	// Sent: the send succeeded; the row waits to be marked done with the other rows of its claim
	// that were sent. A crash here is the one that duplicates: this row and the rows of the claim
	// sent before it (or beside it, in other slots) went out, none is marked, and they are all
	// sent again after the lease.
	Sent
	// Marked: the claim's sent rows were marked done in one Store.Done call (or marking them
	// failed, see Stats.StoreErrors). It runs once per row, after the call, on Run's goroutine,
	// in commit order (the claim's order) whatever order concurrent sends ended in, and outside
	// any slot.
	Marked
	// Failed: the send failed and the row is about to be retried later or parked.
	Failed
)

// String names the point.
func (p Point) String() string {
	switch p {
	case Claimed:
		return "claimed"
	case Sent:
		return "sent"
	case Marked:
		return "marked"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Point(%d)", int(p))
}

// Hook runs at each Point of each row. At Claimed, Sent and Failed it runs on the goroutine of the
// row's send, with the send's context (Slot tells which slot); with WithSends above 1 the hooks
// of different rows run concurrently, so the hook must then be safe for concurrent use. Marked
// runs on Run's goroutine. Returning an error stops Run at once, as a process dying there would:
// no new send starts, nothing is marked or given back, the relay's claimed rows wait out their
// lease, and Run returns an error wrapping the hook's (return ErrCrash). Sends already in flight
// in other slots finish first (Run leaves no goroutine behind), and their outcome is dropped as
// a dying process's would be: no hook runs for them and they are neither marked nor given back,
// so a crash still makes a row go out again only if it was not marked. Crash points and
// count-based fault plans are hooks.
type Hook func(ctx context.Context, at Point, relay string, row Row) error

// Stats counts what a relay did.
type Stats struct {
	Claims      int // claim calls (fetches), whether they found rows or not
	Claimed     int // rows claimed
	Sent        int // rows sent and marked done (counted when their claim's mark succeeds)
	Retried     int // failed sends given back for a later attempt
	Dead        int // rows parked as dead letters
	Skipped     int // claimed rows not sent because the lease ended first
	StoreErrors int // port calls that failed
}

// Option configures a Relay.
type Option func(*Relay)

// WithClock sets the clock (default SystemClock).
func WithClock(c Clock) Option { return func(r *Relay) { r.clock = c } }

// WithLease sets how long a claim holds its rows (default DefaultLease).
func WithLease(d time.Duration) Option { return func(r *Relay) { r.lease = d } }

// WithPoll sets the fallback poll of an idle relay (default DefaultPoll).
func WithPoll(d time.Duration) Option { return func(r *Relay) { r.poll = d } }

// WithBatch sets how many rows one claim takes (default DefaultBatch). A claim's sent rows are
// marked together after its last send, so the batch bounds what a crash re-sends: a relay that
// dies within every claim it makes marks nothing and makes no progress.
func WithBatch(n int) Option { return func(r *Relay) { r.batch = n } }

// WithSends sets how many rows of a claim the relay sends at once, each send in a slot of its
// own (Slot), 1 to MaxSends (default DefaultSends). The relay starts the sends in commit order,
// never more than n in flight, and marks the claim's sent rows in one Store.Done call once every
// send of the claim is over, as with one send at a time: at-least-once delivery, what a crash
// re-sends and lease takeover are the same. What n changes is order: with n > 1 a mail may
// arrive before an older one of the same claim (a slow send is overtaken), so one relay keeps
// commit order only at n = 1. Throughput against a slow receiver grows up to n-fold; a claim
// then takes as long as its slowest send, so keep the batch a few times n.
func WithSends(n int) Option { return func(r *Relay) { r.sends = n } }

// WithMaxAttempts sets how many failed sends park a row (default DefaultMaxAttempts; 0: only a
// permanent failure parks it).
func WithMaxAttempts(n int) Option { return func(r *Relay) { r.maxAttempts = n } }

// WithBackoff sets how long a row waits before attempt n+1 after its n-th failed send (default:
// 100ms·2^(n-1), at most a minute).
func WithBackoff(f func(attempt int) time.Duration) Option { return func(r *Relay) { r.backoff = f } }

// WithRetryable sets which send errors are worth another attempt; the others park the row. The
// default is service.MailRetryable, except that a context error of a send whose relay is still
// running (a sender's own timeout) is retried.
func WithRetryable(f func(error) bool) Option { return func(r *Relay) { r.retryable = f } }

// WithHook sets the hook called at every Point (default none).
func WithHook(h Hook) Option { return func(r *Relay) { r.hook = h } }

// WithOnDead sets a function told of every row the relay parks, with the error that parked it.
func WithOnDead(f func(DeadLetter)) Option { return func(r *Relay) { r.onDead = f } }

// WithOnError sets a function told of every failed port call (the relay carries on: a failed
// claim waits a poll, a failed mark leaves the claim's sent rows to be sent again after the lease).
func WithOnError(f func(error)) Option { return func(r *Relay) { r.onError = f } }

// Relay moves rows from a Store to a Sender, in the order it claimed them (commit order), one row
// at a time or, with WithSends, a few at once, and marks each claim's sent rows done in one
// Store.Done call once the claim's sends are over: a mark costs one statement per claim, not one
// per row. A row whose send failed is never marked; a relay that dies before the mark leaves all
// the claim's sent rows to be sent again. Several relays, each with its own name, may share one
// Store. Its methods are safe for concurrent use; Run runs at most once at a time.
type Relay struct {
	name        string
	store       Store
	send        Sender
	clock       Clock
	lease, poll time.Duration
	batch       int
	sends       int
	maxAttempts int
	backoff     func(int) time.Duration
	retryable   func(error) bool
	hook        Hook
	onDead      func(DeadLetter)
	onError     func(error)

	nudge   chan struct{}
	running atomic.Bool
	mu      sync.Mutex
	stats   Stats
}

// New returns a relay named name (unique among the relays sharing store: it is the claim's
// owner) that sends store's rows with send. Bad options are an error wrapping ErrInvalid.
func New(name string, store Store, send Sender, opts ...Option) (*Relay, error) {
	r := &Relay{
		name: name, store: store, send: send, clock: SystemClock{},
		lease: DefaultLease, poll: DefaultPoll, batch: DefaultBatch, sends: DefaultSends, maxAttempts: DefaultMaxAttempts,
		backoff: defaultBackoff, nudge: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(r)
	}
	switch {
	case name == "":
		return nil, fmt.Errorf("new relay: %w: empty name", ErrInvalid)
	case store == nil || send == nil || r.clock == nil || r.backoff == nil:
		return nil, fmt.Errorf("new relay %s: %w: nil store, sender, clock or backoff", name, ErrInvalid)
	case r.lease <= 0 || r.poll <= 0:
		return nil, fmt.Errorf("new relay %s: %w: lease %v and poll %v must be positive", name, ErrInvalid, r.lease, r.poll)
	case r.batch < 1 || r.maxAttempts < 0:
		return nil, fmt.Errorf("new relay %s: %w: batch %d, max attempts %d", name, ErrInvalid, r.batch, r.maxAttempts)
	case r.sends < 1 || r.sends > MaxSends:
		return nil, fmt.Errorf("new relay %s: %w: sends %d, want 1 to %d", name, ErrInvalid, r.sends, MaxSends)
	}
	return r, nil
}

// Name returns the relay's name.
func (r *Relay) Name() string { return r.name }

// Notify tells the relay that rows may be waiting, so an idle relay claims at once instead of at
// its next poll. It never blocks; nudges while the relay is busy fold into one. Call it after a
// commit, e.g. from the store's after-commit hook.
func (r *Relay) Notify() {
	select {
	case r.nudge <- struct{}{}:
	default:
	}
}

// Stats returns what the relay has done so far.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Relay) count(f func(*Stats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.stats)
}

// ErrRunning is wrapped when Run is called while the relay already runs.
var ErrRunning = errors.New("relay already running")

// Run claims and sends rows until ctx ends, then returns nil; no goroutine is left. It returns
// early with an error wrapping a hook's error when a hook stops it. When it finds nothing to
// claim it waits for a Notify, for its poll interval, or for the next row it retried to come due,
// whichever is first. A send cut short by ctx is neither marked nor given back: its row waits out
// the lease, since the mail may have gone out. The rows of the claim sent before ctx ended are
// still marked done, taking at most StopMarkTimeout.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("relay %s: %w", r.name, ErrRunning)
	}
	defer r.running.Store(false)
	var (
		due  time.Time // the earliest not-before time this relay set, zero when none is ahead
		sent []Row     // the current claim's rows sent and not yet marked, reused across claims
		ids  []string  // their event IDs, for the mark
	)
	c := r.newClaimSender(ctx)
	for ctx.Err() == nil {
		now := r.clock.Now()
		until := now.Add(r.lease)
		rows, err := r.store.Claim(ctx, r.name, now, until, r.batch)
		r.count(func(s *Stats) { s.Claims++; s.Claimed += len(rows) })
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.storeError(fmt.Errorf("relay %s: claim: %w", r.name, err))
		}
		if !due.IsZero() && !due.After(now) {
			due = time.Time{}
		}
		if len(rows) == 0 {
			wait := r.poll
			if !due.IsZero() && due.Sub(now) < wait {
				wait = due.Sub(now)
			}
			select {
			case <-ctx.Done():
			case <-r.nudge:
			case <-r.clock.After(wait):
			}
			continue
		}
		var notBefore time.Time
		if sent, notBefore, err = c.sendClaim(ctx, rows, until, sent[:0]); err != nil {
			return err // a hook stopped the relay, as a dying process: what it sent stays unmarked
		}
		if !notBefore.IsZero() && (due.IsZero() || notBefore.Before(due)) {
			due = notBefore
		}
		if ids, err = r.mark(ctx, sent, ids[:0]); err != nil {
			return err
		}
	}
	return nil
}

type slotKey struct{}

// Slot returns the slot of the send whose context ctx is (0 to the relay's WithSends value - 1)
// and true; false outside a send and its Claimed, Sent and Failed hooks. No two sends of one
// relay are in flight in the same slot at once, so a Sender may keep per-slot state (a
// connection, a log) without a lock; slots are reused from claim to claim.
func Slot(ctx context.Context) (int, bool) {
	n, ok := ctx.Value(slotKey{}).(int)
	return n, ok
}

// claimSender sends the rows of one claim after another through the relay's slots. It belongs
// to one Run and keeps its buffers across claims.
type claimSender struct {
	r       *Relay
	slots   []context.Context // the Run's context with each slot's number
	free    chan int          // the slots no send holds; nil with one slot (no goroutine)
	results []delivery        // the current claim's, by row
	stopped atomic.Bool       // a hook stopped the relay: drop what sends in flight bring back
}

// delivery is what the send of one row came to.
type delivery struct {
	ok        bool      // it succeeded: the row is to be marked
	notBefore time.Time // when the row was given back for a retry
	err       error     // a hook stopped the relay
}

func (r *Relay) newClaimSender(ctx context.Context) *claimSender {
	c := &claimSender{r: r, slots: make([]context.Context, r.sends)}
	for i := range c.slots {
		c.slots[i] = context.WithValue(ctx, slotKey{}, i)
	}
	if r.sends > 1 {
		c.free = make(chan int, r.sends)
		for i := range r.sends {
			c.free <- i
		}
	}
	return c
}

// sendClaim sends rows, starting each in commit order once a slot is free and while the lease
// and ctx last, and waits for every send it started. It appends to sent (a buffer, given empty)
// the rows whose send succeeded, in commit order, and returns the earliest not-before time of
// the rows it gave back, and an error only when a hook stopped the relay.
func (c *claimSender) sendClaim(ctx context.Context, rows []Row, until time.Time, sent []Row) ([]Row, time.Time, error) {
	c.results = slices.Grow(c.results[:0], len(rows))[:len(rows)]
	clear(c.results)
	if c.free == nil {
		for i, row := range rows {
			if !c.startAt(until) {
				continue
			}
			d := &c.results[i]
			d.ok, d.notBefore, d.err = c.r.deliver(c.slots[0], row, nil)
			if d.err != nil || ctx.Err() != nil {
				break
			}
		}
	} else {
		var wg sync.WaitGroup
		for i, row := range rows {
			slot := <-c.free // a slot comes free when a send ends, whether ctx ended or not
			if c.stopped.Load() || ctx.Err() != nil {
				c.free <- slot
				break
			}
			if !c.startAt(until) {
				c.free <- slot
				continue
			}
			wg.Go(func() {
				defer func() { c.free <- slot }()
				d := &c.results[i]
				d.ok, d.notBefore, d.err = c.r.deliver(c.slots[slot], row, &c.stopped)
				if d.err != nil {
					c.stopped.Store(true)
				}
			})
		}
		wg.Wait()
	}
	var due time.Time
	for i, d := range c.results {
		if d.err != nil {
			c.stopped.Store(false)
			return sent, time.Time{}, d.err
		}
		if d.ok {
			sent = append(sent, rows[i])
		}
		if !d.notBefore.IsZero() && (due.IsZero() || d.notBefore.Before(due)) {
			due = d.notBefore
		}
	}
	return sent, due, nil
}

// startAt reports whether the next row may be sent: its claim's lease, until, has not ended. A
// row whose lease ended is skipped: another relay may hold it now, and the next claim is afresh.
func (c *claimSender) startAt(until time.Time) bool {
	if !c.r.clock.Now().Before(until) {
		c.r.count(func(s *Stats) { s.Skipped++ })
		return false
	}
	return true
}

// deliver sends one claimed row and records a failure. It reports whether the send succeeded
// (the row is then the caller's to mark), the row's not-before time when it was given back for a
// retry, and an error only when a hook stopped the relay. Once stopped (nil with one slot) is
// set by another slot's hook, it drops the send's outcome: no hook, no retry, no park.
func (r *Relay) deliver(ctx context.Context, row Row, stopped *atomic.Bool) (bool, time.Time, error) {
	if err := r.at(ctx, Claimed, row); err != nil {
		return false, time.Time{}, err
	}
	sendErr := r.send(ctx, row.Event)
	if stopped != nil && stopped.Load() {
		return false, time.Time{}, nil
	}
	if sendErr == nil {
		// Delivered, even if ctx ended meanwhile: mark it rather than send it a second time.
		return true, time.Time{}, r.at(ctx, Sent, row)
	}
	if ctx.Err() != nil {
		return false, time.Time{}, nil
	}
	if err := r.at(ctx, Failed, row); err != nil {
		return false, time.Time{}, err
	}
	attempts := row.Attempts + 1
	if r.isRetryable(sendErr) && (r.maxAttempts == 0 || attempts < r.maxAttempts) {
		notBefore := r.clock.Now().Add(r.backoff(attempts))
		if err := r.store.Retry(ctx, r.name, row.ID(), notBefore, sendErr.Error()); err != nil {
			r.storeError(fmt.Errorf("relay %s: retry %s: %w", r.name, row.ID(), err))
			return false, time.Time{}, nil
		}
		r.count(func(s *Stats) { s.Retried++ })
		return false, notBefore, nil
	}
	if err := r.store.Dead(ctx, r.name, row.ID(), sendErr.Error()); err != nil {
		r.storeError(fmt.Errorf("relay %s: park %s: %w", r.name, row.ID(), err))
		return false, time.Time{}, nil
	}
	r.count(func(s *Stats) { s.Dead++ })
	if r.onDead != nil {
		row.Attempts = attempts
		r.onDead(DeadLetter{Row: row, Reason: sendErr.Error()})
	}
	return false, time.Time{}, nil
}

// mark records the sent rows of one claim as done in one Done call, then runs the Marked hook for
// each, in the order they were sent. It returns ids (a buffer, given empty) holding the rows'
// event IDs, and an error only when a hook stopped the relay.
func (r *Relay) mark(ctx context.Context, sent []Row, ids []string) ([]string, error) {
	if len(sent) == 0 {
		return ids, nil
	}
	for _, row := range sent {
		ids = append(ids, row.ID())
	}
	markCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		markCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), StopMarkTimeout)
		defer cancel()
	}
	if err := r.store.Done(markCtx, ids...); err != nil {
		r.storeError(fmt.Errorf("relay %s: mark %d rows done, %s to %s: %w", r.name, len(ids), ids[0], ids[len(ids)-1], err))
	} else {
		r.count(func(s *Stats) { s.Sent += len(ids) })
	}
	for _, row := range sent {
		if err := r.at(markCtx, Marked, row); err != nil {
			return ids, err
		}
	}
	return ids, nil
}

func (r *Relay) at(ctx context.Context, p Point, row Row) error {
	if r.hook == nil {
		return nil
	}
	if err := r.hook(ctx, p, r.name, row); err != nil {
		return fmt.Errorf("relay %s stopped at %v of event %s: %w", r.name, p, row.ID(), err)
	}
	return nil
}

func (r *Relay) isRetryable(err error) bool {
	if r.retryable != nil {
		return r.retryable(err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return !errors.Is(err, service.ErrMailPermanent)
	}
	return service.MailRetryable(err)
}

func (r *Relay) storeError(err error) {
	r.count(func(s *Stats) { s.StoreErrors++ })
	if r.onError != nil {
		r.onError(err)
	}
}

func defaultBackoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<min(attempt-1, 20), time.Minute)
}
