package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sqlite"
)

var ctx = context.Background()

func addBatch(t *testing.T, s service.Store, sku, ref string, qty int) {
	t.Helper()
	require.NoError(t, service.AddBatch(ctx, service.Bootstrap(s, fakes.NewMailer()), ref, sku, qty, time.Time{}))
}

func TestOpenRefusesWhatHasNoWAL(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", "a?b"} {
		t.Run(path, func(t *testing.T) {
			_, err := sqlite.Open(ctx, path)
			assert.Error(t, err, "Open(%q)", path)
		})
	}
	_, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"), sqlite.WithBusyTimeout(-time.Second))
	assert.Error(t, err, "a negative busy timeout")
}

func TestOpenIsIdempotentAndKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stockbus.db")
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	addBatch(t, s, "LAMP", "b1", 7)
	require.NoError(t, s.Close())
	s, err = sqlite.Open(ctx, path)
	require.NoError(t, err, "reopening an existing database")
	defer func() { require.NoError(t, s.Close()) }()
	p, ok := s.Product("LAMP")
	require.True(t, ok)
	assert.Equal(t, 7, p.Batches[0].AvailableQuantity())
	var mode string
	require.NoError(t, s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
	var version int
	require.NoError(t, s.DB().QueryRow("PRAGMA user_version").Scan(&version))
	assert.Equal(t, sqlite.SchemaVersion, version)
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stockbus.db")
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	_, err = s.DB().Exec(fmt.Sprintf("PRAGMA user_version = %d", sqlite.SchemaVersion+1))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = sqlite.Open(ctx, path)
	assert.ErrorContains(t, err, "newer")
}

// A commit that cannot get the write lock within the busy timeout is a concurrent update.
func TestBusyIsAConcurrentUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stockbus.db")
	s, err := sqlite.Open(ctx, path, sqlite.WithBusyTimeout(10*time.Millisecond))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	addBatch(t, s, "LAMP", "b1", 7)
	other, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer func() { require.NoError(t, other.Close()) }()
	lock, err := other.DB().BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	require.NoError(t, err)
	defer func() { _ = lock.Rollback() }()

	_, err = service.Allocate(ctx, service.Bootstrap(s, fakes.NewMailer(), service.WithRetries(0)), "o1", "LAMP", 1)
	assert.ErrorIs(t, err, service.ErrConcurrentUpdate, "allocate while another connection holds the write lock")
}

// Without the version predicate, two writers who loaded the same stock both commit: the batch
// of 10 holds 20 and one version bump is lost. With it (the store as shipped), one conflicts.
func TestVersionPredicateStopsALostUpdate(t *testing.T) {
	for _, c := range []struct {
		name           string
		drop           bool
		wantAllocated  int
		wantVersion    int
		wantConflicted int
	}{
		{"with the version predicate", false, 10, 1, 1},
		{"without it", true, 20, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			if c.drop {
				sqlite.DropVersionCheck(s)
			}
			got := twoWritersOfTen(t, s, s.SetBeforeCommit)
			assert.Equal(t, c.wantConflicted, got.conflicts, "conflicts")
			var allocated, version int
			require.NoError(t, s.DB().QueryRow("SELECT COALESCE(SUM(qty), 0) FROM allocations").Scan(&allocated))
			require.NoError(t, s.DB().QueryRow("SELECT version_number FROM products WHERE sku = 'CHAIR'").Scan(&version))
			assert.Equal(t, c.wantAllocated, allocated, "units allocated from a batch of 10")
			assert.Equal(t, c.wantVersion, version, "version number")
		})
	}
}

type outcome struct{ conflicts int }

// twoWritersOfTen runs two units of work that each load CHAIR (a batch of 10) and allocate 10,
// both loading before either commits.
func twoWritersOfTen(t *testing.T, s service.Store, setBeforeCommit func(fakes.Hook)) outcome {
	t.Helper()
	addBatch(t, s, "CHAIR", "b1", 10)
	uow := service.Bootstrap(s, fakes.NewMailer(), service.WithRetries(0))
	setBeforeCommit(fakes.NewRendezvous(2).Wait)
	defer setBeforeCommit(nil)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = service.Allocate(ctx, uow, fmt.Sprintf("order%d", i), "CHAIR", 10) })
	}
	wg.Wait()
	var o outcome
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, service.ErrConcurrentUpdate)
			o.conflicts++
		}
	}
	return o
}

// A context cancelled after any statement of a commit leaves all of the commit or none of it.
func TestCancelMidCommitIsAllOrNothing(t *testing.T) {
	for stop := 1; ; stop++ {
		s := open(t)
		sqlite.DisableCache(s) // read what the rows hold
		addBatch(t, s, "LAMP", "b1", 10)
		ran := 0
		cctx, cancel := context.WithCancel(ctx)
		sqlite.SetAfterStatement(s, func(_ context.Context, n int) {
			ran = n
			if n == stop {
				cancel()
			}
		})
		tx, err := s.Begin(cctx)
		require.NoError(t, err)
		p, err := tx.Get(cctx, "LAMP")
		require.NoError(t, err)
		_, err = p.Allocate(domain.OrderLine{OrderID: "o1", SKU: "LAMP", Qty: 1})
		require.NoError(t, err)
		require.NoError(t, p.AddBatch(domain.NewBatch("b2", "LAMP", 5, time.Time{})))
		fresh := domain.NewProduct("NEW", nil)
		require.NoError(t, fresh.AddBatch(domain.NewBatch("n1", "NEW", 1, time.Time{})))
		require.NoError(t, tx.Add(cctx, fresh))
		commitErr := tx.Commit(cctx)
		cancel()

		lamp, ok := s.Product("LAMP")
		require.True(t, ok)
		_, added := s.Product("NEW")
		_, held := lamp.Batches[0].Holds("o1", "LAMP")
		all := held && added && len(lamp.Batches) == 2 && lamp.VersionNumber == 1
		none := !held && !added && len(lamp.Batches) == 1 && lamp.VersionNumber == 0
		assert.True(t, all || none, "cancelled after statement %d (commit error %v): held %v, NEW %v, %d batches, version %d",
			stop, commitErr, held, added, len(lamp.Batches), lamp.VersionNumber)
		if commitErr != nil {
			assert.True(t, none, "a failed commit (%v) left part of its work", commitErr)
		}
		if ran < stop { // the commit ran fewer statements than stop: every point has been tried
			require.Greater(t, stop, 3, "the commit should run several statements")
			return
		}
	}
}

// A commit that allocates one line to a product of 100,000 lines writes that line and leaves
// the others' rows as they were.
func TestLargeProductWritesOnlyTheChange(t *testing.T) {
	const lines = 100_000
	s := open(t)
	p := domain.NewProduct("BIG", nil)
	b := domain.NewBatch("big", "BIG", lines+1, time.Time{})
	require.NoError(t, p.AddBatch(b))
	for i := range lines {
		b.Allocate(domain.OrderLine{OrderID: fmt.Sprintf("o%06d", i), SKU: "BIG", Qty: 1})
	}
	require.Equal(t, lines, b.Allocations())
	tx, _ := s.Begin(ctx)
	require.NoError(t, tx.Add(ctx, p))
	require.NoError(t, tx.Commit(ctx))
	var before, after struct{ min, max, count int }
	stats := func(into *struct{ min, max, count int }) {
		require.NoError(t, s.DB().QueryRow("SELECT MIN(id), MAX(id), COUNT(*) FROM allocations").Scan(&into.min, &into.max, &into.count))
	}
	stats(&before)

	var statements int
	sqlite.SetAfterStatement(s, func(_ context.Context, n int) { statements = n })
	_, err := service.Allocate(ctx, service.Bootstrap(s, fakes.NewMailer()), "new", "BIG", 1)
	require.NoError(t, err)
	stats(&after)
	assert.Equal(t, before.min, after.min, "the oldest line's row was rewritten")
	assert.Equal(t, before.count+1, after.count)
	assert.Equal(t, before.max+1, after.max, "one new row")
	assert.Equal(t, 4, statements, "statements of the commit (product, batch, line, event log)")
}

// Two stores on one file (two processes, say) see each other's commits: the cache is keyed by
// the row version, which every commit bumps.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stockbus.db")
	a, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer func() { require.NoError(t, a.Close()) }()
	b, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	addBatch(t, a, "LAMP", "b1", 10)
	ua, ub := service.Bootstrap(a, fakes.NewMailer()), service.Bootstrap(b, fakes.NewMailer())
	for i := range 4 {
		uow := []service.UnitOfWork{ua, ub}[i%2]
		_, err := service.Allocate(ctx, uow, fmt.Sprintf("o%d", i), "LAMP", 1)
		require.NoError(t, err, "allocation %d", i)
	}
	for name, s := range map[string]*sqlite.Store{"a": a, "b": b} {
		p, ok := s.Product("LAMP")
		require.True(t, ok)
		assert.Equal(t, 4, p.Batches[0].Allocations(), "store %s", name)
		assert.Equal(t, 4, p.VersionNumber, "store %s", name)
	}
}

// The after-commit hook runs once per successful commit with the skus it saw, never after a
// failed one; Revision moves with every change and with Touch; SKUs lists the products sorted.
func TestAfterCommitRevisionAndSKUs(t *testing.T) {
	s := open(t)
	addBatch(t, s, "B", "b1", 1)
	addBatch(t, s, "A", "a1", 1)
	assert.Equal(t, []string{"A", "B"}, s.SKUs())
	assert.Equal(t, uint64(0), s.Revision("NOPE"))
	var after [][]string
	s.SetAfterCommit(func(_ context.Context, skus []string) { after = append(after, skus) })
	uow := service.Bootstrap(s, fakes.NewMailer(), service.WithRetries(0))
	rev := s.Revision("A")
	_, err := service.Allocate(ctx, uow, "o1", "A", 1)
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"A"}}, after, "after-commit calls")
	assert.Greater(t, s.Revision("A"), rev, "revision after a change")

	rev = s.Revision("B")
	require.True(t, s.Touch("B"))
	assert.Greater(t, s.Revision("B"), rev, "revision after Touch")
	s.SetBeforeCommit(func(_ context.Context, skus []string) { s.Touch(skus[0]) })
	_, err = service.Allocate(ctx, uow, "o2", "B", 1)
	require.ErrorIs(t, err, service.ErrConcurrentUpdate)
	assert.Len(t, after, 1, "the after-commit hook ran after a failed commit")
	s.SetBeforeCommit(nil)
	s.SetAfterCommit(nil)
}

// The write lock is taken when a commit begins (BEGIN IMMEDIATE), so another process's commit to
// an unrelated product cannot land between this commit's first read and its first write. With a
// deferred BEGIN it could, and SQLite would then fail this commit with SQLITE_BUSY_SNAPSHOT: a
// conflict between unrelated products.
func TestCommitHoldsTheWriteLockFromItsFirstStatement(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stockbus.db")
	a, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer func() { require.NoError(t, a.Close()) }()
	b, err := sqlite.Open(ctx, path, sqlite.WithBusyTimeout(time.Millisecond))
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	addBatch(t, a, "READ", "r1", 5)
	addBatch(t, a, "WRITE", "w1", 5)
	addBatch(t, a, "OTHER", "x1", 5)

	var other error
	sqlite.SetAfterStatement(a, func(_ context.Context, n int) {
		if n == 1 { // after the check of READ, before the update of WRITE: another process commits
			_, other = service.Allocate(ctx, service.Bootstrap(b, fakes.NewMailer(), service.WithRetries(0)), "x", "OTHER", 1)
		}
	})
	tx, err := a.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Get(ctx, "READ")
	require.NoError(t, err)
	p, err := tx.Get(ctx, "WRITE")
	require.NoError(t, err)
	_, err = p.Allocate(domain.OrderLine{OrderID: "o1", SKU: "WRITE", Qty: 1})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx), "a commit touching READ and WRITE, while another process wrote OTHER")
	assert.ErrorIs(t, other, service.ErrConcurrentUpdate, "the other process's commit, which found the lock held")
}
