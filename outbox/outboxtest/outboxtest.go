// Package outboxtest checks an outbox.Store: TestStore is the port's contract, which the fakes,
// SQLite and Postgres stores all pass, and Clock is a manual clock for leases and backoffs.
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
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
)

// Factory returns a new, empty store whose commits write the outbox (EnableOutbox called), as
// both ports; t's cleanup closes it.
type Factory func(t *testing.T) (service.Store, outbox.Store)

// Start is the time the contract's claims start from, on a whole microsecond (Postgres keeps
// microseconds).
var Start = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const lease = 30 * time.Second

// Orders commits n orders of 1, one commit each, on a new sku with one batch of stock units, so
// the outbox holds min(stock, n) Allocated rows and then the rest OutOfStock rows.
func Orders(t testing.TB, store service.Store, sku string, stock, n int) {
	t.Helper()
	ctx := context.Background()
	uow := service.NewUnitOfWork(store, nil, service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
	require.NoError(t, service.AddBatch(ctx, uow, "b-"+sku, sku, stock, time.Time{}), "add a batch of %s", sku)
	for i := range n {
		_, err := service.Allocate(ctx, uow, fmt.Sprintf("%s-o%d", sku, i), sku, 1)
		if errors.Is(err, domain.ErrOutOfStock) {
			err = nil
		}
		require.NoError(t, err, "order %d of %s", i, sku)
	}
}

// TestStore runs the outbox port's contract against the stores open returns.
func TestStore(t *testing.T, open Factory) {
	ctx := context.Background()
	setup := func(t *testing.T, n int) (outbox.Store, []string) {
		t.Helper()
		store, ob := open(t)
		Orders(t, store, "LAMP", 1, n)
		rows, err := ob.Claim(ctx, "census", Start.Add(-time.Hour), Start.Add(-time.Hour+time.Nanosecond*1000), n+1)
		require.NoError(t, err, "claim every row to learn their IDs")
		require.Len(t, rows, n, "rows committed")
		ids := make([]string, n)
		for i, r := range rows {
			ids[i] = r.ID()
		}
		return ob, ids
	}
	claim := func(t *testing.T, ob outbox.Store, relay string, now time.Time, limit int) []string {
		t.Helper()
		rows, err := ob.Claim(ctx, relay, now, now.Add(lease), limit)
		require.NoError(t, err, "Claim(%s, %v, %d)", relay, now, limit)
		return idsOf(rows)
	}

	t.Run("claim returns rows in commit order with their events, up to the limit", func(t *testing.T) {
		store, ob := open(t)
		Orders(t, store, "LAMP", 1, 3)
		rows, err := ob.Claim(ctx, "r1", Start, Start.Add(lease), 2)
		require.NoError(t, err)
		require.Len(t, rows, 2, "limit")
		assert.Less(t, rows[0].Seq, rows[1].Seq, "commit order")
		assert.IsType(t, domain.Allocated{}, rows[0].Event, "first order got the unit")
		assert.IsType(t, domain.OutOfStock{}, rows[1].Event)
		assert.Equal(t, "LAMP-o1", rows[1].Event.(domain.OutOfStock).OrderID)
		assert.NotEmpty(t, rows[0].ID(), "rows carry the stamped event ID")
		assert.Zero(t, rows[0].Attempts)
		rest, err := ob.Claim(ctx, "r2", Start, Start.Add(lease), 10)
		require.NoError(t, err)
		require.Len(t, rest, 1, "the row r1 did not take")
		assert.Greater(t, rest[0].Seq, rows[1].Seq)
	})

	t.Run("a claimed row is not claimed again until its lease ends", func(t *testing.T) {
		ob, ids := setup(t, 2)
		assert.Equal(t, ids, claim(t, ob, "r1", Start, 10))
		assert.Empty(t, claim(t, ob, "r2", Start, 10), "same time")
		assert.Empty(t, claim(t, ob, "r2", Start.Add(lease-time.Microsecond), 10), "just before the lease ends")
		assert.Empty(t, claim(t, ob, "r1", Start.Add(lease/2), 10), "not even by its holder")
		assert.Equal(t, ids, claim(t, ob, "r2", Start.Add(lease), 10), "once the lease has ended")
		assert.Empty(t, claim(t, ob, "r1", Start.Add(lease), 10), "r2 holds them now")
	})

	t.Run("done rows are never claimed again", func(t *testing.T) {
		ob, ids := setup(t, 3)
		require.Equal(t, ids, claim(t, ob, "r1", Start, 10))
		require.NoError(t, ob.Done(ctx, ids[1], "unknown", ids[1]))
		assert.Equal(t, []string{ids[0], ids[2]}, claim(t, ob, "r2", Start.Add(lease), 10))
		require.NoError(t, ob.Done(ctx), "no IDs")
		require.NoError(t, ob.Done(ctx, ids[0], ids[2]), "done by a relay whose lease ended: delivered is delivered")
		assert.Empty(t, claim(t, ob, "r3", Start.Add(10*lease), 10))
		dead, err := ob.DeadLetters(ctx)
		require.NoError(t, err)
		assert.Empty(t, dead)
	})

	t.Run("a retried row waits until its not-before time and counts the attempt", func(t *testing.T) {
		ob, ids := setup(t, 2)
		require.Equal(t, ids, claim(t, ob, "r1", Start, 10))
		notBefore := Start.Add(lease + lease/2) // after r2 claims, before r2's lease ends
		require.NoError(t, ob.Retry(ctx, "r1", ids[0], notBefore, "421 try later"))
		assert.Empty(t, claim(t, ob, "r2", Start, 10), "r1 still holds the other row")
		assert.Equal(t, []string{ids[1]}, claim(t, ob, "r2", Start.Add(lease), 10), "the retried row is not due yet")
		rows, err := ob.Claim(ctx, "r3", notBefore, notBefore.Add(lease), 10)
		require.NoError(t, err)
		require.Len(t, rows, 1, "due at its not-before time")
		assert.Equal(t, ids[0], rows[0].ID())
		assert.Equal(t, 1, rows[0].Attempts)
		require.NoError(t, ob.Retry(ctx, "r3", ids[0], notBefore, "again"))
		rows, err = ob.Claim(ctx, "r3", notBefore, notBefore.Add(lease), 10)
		require.NoError(t, err)
		require.Len(t, rows, 1, "a not-before time in the past: due at once")
		assert.Equal(t, 2, rows[0].Attempts)
	})

	t.Run("a dead letter is never claimed again and can be read back", func(t *testing.T) {
		ob, ids := setup(t, 2)
		require.Equal(t, ids, claim(t, ob, "r1", Start, 10))
		require.NoError(t, ob.Retry(ctx, "r1", ids[1], Start, "421"))
		require.Equal(t, []string{ids[1]}, claim(t, ob, "r1", Start, 10))
		require.NoError(t, ob.Dead(ctx, "r1", ids[1], "550 no such user"))
		assert.Equal(t, []string{ids[0]}, claim(t, ob, "r2", Start.Add(10*lease), 10), "r1's lease on row 0 ended; row 1 is dead")
		dead, err := ob.DeadLetters(ctx)
		require.NoError(t, err)
		require.Len(t, dead, 1)
		assert.Equal(t, ids[1], dead[0].ID())
		assert.Equal(t, "550 no such user", dead[0].Reason)
		assert.Equal(t, 2, dead[0].Attempts, "one retry and the failure that parked it")
		assert.IsType(t, domain.OutOfStock{}, dead[0].Event)
	})

	t.Run("only the relay holding a row can retry or park it", func(t *testing.T) {
		ob, ids := setup(t, 2)
		require.Equal(t, ids, claim(t, ob, "r1", Start, 10))
		require.Equal(t, ids, claim(t, ob, "r2", Start.Add(lease), 10), "r1's lease ended")
		require.NoError(t, ob.Done(ctx, ids[1]))
		for _, c := range []struct {
			name string
			call func() error
		}{
			{"retry by the relay whose lease was taken over", func() error { return ob.Retry(ctx, "r1", ids[0], Start, "x") }},
			{"park by the relay whose lease was taken over", func() error { return ob.Dead(ctx, "r1", ids[0], "x") }},
			{"retry of a done row", func() error { return ob.Retry(ctx, "r2", ids[1], Start, "x") }},
			{"park of a done row", func() error { return ob.Dead(ctx, "r2", ids[1], "x") }},
			{"retry of an unknown row", func() error { return ob.Retry(ctx, "r2", "unknown", Start, "x") }},
			{"park of an unknown row", func() error { return ob.Dead(ctx, "r2", "unknown", "x") }},
		} {
			assert.ErrorIs(t, c.call(), outbox.ErrNotClaimed, c.name)
		}
		assert.Empty(t, claim(t, ob, "r3", Start.Add(lease), 10), "r2 still holds row 0")
		dead, err := ob.DeadLetters(ctx)
		require.NoError(t, err)
		assert.Empty(t, dead, "nothing was parked")
		rows, err := ob.Claim(ctx, "r3", Start.Add(2*lease), Start.Add(3*lease), 10)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Zero(t, rows[0].Attempts, "no attempt was counted")
	})

	t.Run("bad claims are refused and change nothing", func(t *testing.T) {
		ob, ids := setup(t, 1)
		for _, c := range []struct {
			name       string
			relay      string
			now, until time.Time
			limit      int
		}{
			{"empty relay", "", Start, Start.Add(lease), 10},
			{"limit 0", "r1", Start, Start.Add(lease), 0},
			{"negative limit", "r1", Start, Start.Add(lease), -1},
			{"lease ending when it starts", "r1", Start, Start, 10},
			{"lease ending before it starts", "r1", Start, Start.Add(-time.Second), 10},
		} {
			rows, err := ob.Claim(ctx, c.relay, c.now, c.until, c.limit)
			assert.ErrorIs(t, err, outbox.ErrInvalid, c.name)
			assert.Empty(t, rows, c.name)
		}
		assert.Equal(t, ids, claim(t, ob, "r1", Start, 10), "the row is still free")
	})

	t.Run("concurrent claims never hand out a row twice", func(t *testing.T) {
		const n, relays = 60, 4
		ob, ids := setup(t, n)
		var (
			mu  sync.Mutex
			got = map[string]string{}
			wg  sync.WaitGroup
		)
		for r := range relays {
			name := fmt.Sprintf("r%d", r)
			wg.Go(func() {
				for {
					rows, err := ob.Claim(ctx, name, Start, Start.Add(lease), 3)
					if !assert.NoError(t, err, "claim by %s", name) || len(rows) == 0 {
						return
					}
					mu.Lock()
					for _, row := range rows {
						if other, ok := got[row.ID()]; ok {
							t.Errorf("row %s claimed by %s and %s", row.ID(), other, name)
						}
						got[row.ID()] = name
					}
					mu.Unlock()
					if !assert.NoError(t, ob.Done(ctx, idsOf(rows)...)) {
						return
					}
				}
			})
		}
		wg.Wait()
		assert.Len(t, got, n, "every row claimed once")
		for _, id := range ids {
			assert.Contains(t, got, id)
		}
	})
}

func idsOf(rows []outbox.Row) []string {
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.ID())
	}
	return slices.Clip(ids)
}
