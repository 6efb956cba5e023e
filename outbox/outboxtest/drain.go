package outboxtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
)

// Crashes describes a drain with relay crashes injected by count.
type Crashes struct {
	Relays     int  // relays running at once, each restarted under a new name when it crashes
	CrashEvery int  // each relay incarnation crashes after its CrashEvery-th send, before marking it (0: never)
	Batch      int  // rows per claim; below CrashEvery, or no incarnation ever marks a claim
	Stock      int  // units of the hot sku's one batch
	Orders     int  // orders of 1 on the hot sku, one commit each
	Dedup      bool // the mailer drops repeats of an event ID (fakes.WithDedup)
	// Stores, when set, gives relay slot i the port Stores[i%len(Stores)] instead of Drain's ob:
	// stores opened separately on one database stand for relays in separate processes.
	Stores []outbox.Store
}

// Drained is what a drain recorded.
type Drained struct {
	Rows         map[string]string   // event ID -> event type, of every row committed
	Mails        map[string]int      // event ID -> mails delivered for it
	Unmarked     map[string]int      // event ID -> times it was sent and its relay died before marking it (every row of the claim sent by then)
	DedupHits    map[string]int      // event ID -> repeats the mailer dropped
	Incarnations int                 // relays started, restarts included
	Rounds       int                 // times every relay was idle with rows left, so the clock moved on a lease
	Stats        outbox.Stats        // summed over every incarnation
	SentBy       map[string][]uint64 // relay incarnation -> seqs of the rows it sent, in order
}

// Drain commits c.Orders orders on a hot sku into store, then runs c.Relays relays over ob, which
// mail one mail per event (an OutOfStock through service.NotifyOutOfStock, an Allocated to the
// customer), crashing them by c's plan and restarting them, until every row is marked done. Time
// is a manual Clock: it moves on by one lease only when every running relay is idle, so a lease
// ends only for a relay that died, and a duplicate can only come from a crash.
func Drain(t *testing.T, store service.Store, ob outbox.Store, c Crashes) Drained {
	t.Helper()
	// An incarnation marks nothing before its claim's sends are over: one that crashes within its
	// first claim makes no progress, and the drain would never end.
	require.True(t, c.CrashEvery == 0 || c.Batch < c.CrashEvery, "crash plan: a batch of %d needs CrashEvery above it, got %d", c.Batch, c.CrashEvery)
	Orders(t, store, "HOT", c.Stock, c.Orders)
	d := Drained{Rows: map[string]string{}, Mails: map[string]int{}, Unmarked: map[string]int{}, DedupHits: map[string]int{}, SentBy: map[string][]uint64{}}
	var mailerOpts []fakes.MailerOption
	if c.Dedup {
		mailerOpts = append(mailerOpts, fakes.WithDedup())
	}
	mailer := fakes.NewMailer(mailerOpts...)
	bus := service.NewBus()
	service.Subscribe(bus, service.NotifyOutOfStock(mailer))
	service.Subscribe(bus, func(ctx context.Context, e domain.Allocated) error {
		return mailer.Send(ctx, service.Mail{To: e.OrderID + "@example.com", Subject: "Allocated to " + e.BatchRef, Cause: e})
	})
	send := outbox.BusSender(bus)

	const lease = time.Minute
	clock := NewClock(Start)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a guard against a hang, not a measurement
	defer cancel()
	var (
		mu        sync.Mutex
		marked    = map[string]bool{}
		hookCalls int
		idle      = make(chan int, 64)
		wg        sync.WaitGroup
		failed    = make(chan error, c.Relays)
	)
	for slot := range c.Relays {
		wg.Go(func() {
			for inc := 1; ctx.Err() == nil; inc++ {
				sends := 0
				unmarked := map[string]bool{} // sent by this incarnation, not yet marked
				hook := func(_ context.Context, at outbox.Point, relay string, row outbox.Row) error {
					mu.Lock()
					defer mu.Unlock()
					hookCalls++
					switch at {
					case outbox.Sent:
						d.SentBy[relay] = append(d.SentBy[relay], row.Seq)
						unmarked[row.ID()] = true
						sends++
						if sends == c.CrashEvery {
							for id := range unmarked {
								d.Unmarked[id]++
							}
							return outbox.ErrCrash
						}
					case outbox.Marked:
						delete(unmarked, row.ID())
						marked[row.ID()] = true
					}
					return nil
				}
				port := ob
				if len(c.Stores) > 0 {
					port = c.Stores[slot%len(c.Stores)]
				}
				r, err := outbox.New(fmt.Sprintf("r%d#%d", slot, inc), port, send, outbox.WithClock(idleClock{clock, slot, idle, ctx.Done()}),
					outbox.WithLease(lease), outbox.WithPoll(lease), outbox.WithBatch(c.Batch), outbox.WithHook(hook))
				if err != nil {
					failed <- err
					return
				}
				mu.Lock()
				d.Incarnations++
				mu.Unlock()
				err = r.Run(ctx)
				mu.Lock()
				s := r.Stats()
				d.Stats.Claims += s.Claims
				d.Stats.Claimed += s.Claimed
				d.Stats.Sent += s.Sent
				d.Stats.Retried += s.Retried
				d.Stats.Dead += s.Dead
				d.Stats.Skipped += s.Skipped
				d.Stats.StoreErrors += s.StoreErrors
				mu.Unlock()
				if err != nil && !errors.Is(err, outbox.ErrCrash) {
					failed <- err
					return
				}
			}
		})
	}
	progress := -1 // hook calls at the last round; a round that moved nothing ends the drain
	for waiting := map[int]bool{}; ; {
		select {
		case slot := <-idle:
			waiting[slot] = true
		case err := <-failed:
			cancel()
			wg.Wait()
			require.NoError(t, err, "a relay failed")
		case <-ctx.Done():
			wg.Wait()
			require.NoError(t, ctx.Err(), "the drain did not finish: %d rounds, %d incarnations", d.Rounds, d.Incarnations)
		}
		if len(waiting) < c.Relays {
			continue
		}
		mu.Lock()
		all, calls := len(marked) == c.Orders, hookCalls
		mu.Unlock()
		if all || calls == progress {
			break // done, or stalled: the checks below say what is missing
		}
		progress = calls
		clear(waiting)
		d.Rounds++
		clock.Advance(lease)
	}
	cancel()
	wg.Wait()

	left, err := ob.Claim(context.Background(), "census", clock.Now().Add(10*lease), clock.Now().Add(11*lease), c.Orders+1)
	require.NoError(t, err)
	assert.Empty(t, left, "rows neither done nor parked after the drain")
	for _, m := range mailer.Mails() {
		d.Mails[m.Cause.Identity().ID]++
	}
	for _, id := range mailer.DedupHits() {
		d.DedupHits[id]++
	}
	for _, row := range censusRows(t, store, ob) {
		d.Rows[row.ID()] = fmt.Sprintf("%T", row.Event)
	}
	return d
}

// censusRows lists every row, done or not, through the store's own Outbox method.
func censusRows(t *testing.T, store service.Store, _ outbox.Store) []outbox.Row {
	t.Helper()
	lister, ok := store.(interface{ Outbox() []outbox.Row })
	require.True(t, ok, "%T lists its outbox rows with Outbox()", store)
	return lister.Outbox()
}

// idleClock tells the drain when relay slot starts to wait.
type idleClock struct {
	*Clock
	slot int
	idle chan<- int
	stop <-chan struct{}
}

func (c idleClock) After(d time.Duration) <-chan time.Time {
	ch := c.Clock.After(d)
	select {
	case c.idle <- c.slot:
	case <-c.stop:
	}
	return ch
}

// Check asserts what a drain by c must show: every committed row (min(Stock, Orders) Allocated,
// the rest OutOfStock) mailed at least once; with de-duplication exactly once, the mailer having
// dropped exactly the repeats of the rows sent and not marked when their relay died; without it,
// each row's extra mails equal, exactly, the times it was sent and not marked.
func (d Drained) Check(t *testing.T, c Crashes) {
	t.Helper()
	types := map[string]int{}
	for _, typ := range d.Rows {
		types[typ]++
	}
	allocated := min(c.Stock, c.Orders)
	assert.Equal(t, map[string]int{"domain.Allocated": allocated, "domain.OutOfStock": c.Orders - allocated}, types, "rows committed")
	lost, extra := 0, map[string]int{}
	for id := range d.Rows {
		switch n := d.Mails[id]; {
		case n == 0:
			lost++
		case n > 1:
			extra[id] = n - 1
		}
	}
	assert.Zero(t, lost, "rows never mailed")
	assert.Len(t, d.Mails, len(d.Rows), "mails for events that are no row")
	if c.CrashEvery > 0 {
		assert.NotEmpty(t, d.Unmarked, "the plan crashed no relay after a send")
	}
	if c.Dedup {
		assert.Empty(t, extra, "duplicated mails")
		assert.Equal(t, d.Unmarked, d.DedupHits, "repeats the mailer dropped, by event ID, against rows sent and not marked when their relay died")
	} else {
		assert.Equal(t, d.Unmarked, extra, "duplicated mails, by event ID, against rows sent and not marked when their relay died")
	}
	if d.Rounds == 0 {
		// No lease ended, so each relay's claims took the oldest free rows: it sent in commit order.
		for relay, seqs := range d.SentBy {
			assert.True(t, slices.IsSorted(seqs), "relay %s sent out of commit order: %v", relay, seqs)
		}
	}
	assert.Zero(t, d.Stats.StoreErrors, "failed port calls")
	assert.Zero(t, d.Stats.Dead, "dead letters")
}
