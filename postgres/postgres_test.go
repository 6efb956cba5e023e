package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/service"
)

var ctx = context.Background()

func addBatch(t *testing.T, s service.Store, sku, ref string, qty int) {
	t.Helper()
	require.NoError(t, service.AddBatch(ctx, service.Bootstrap(s, fakes.NewMailer()), ref, sku, qty, time.Time{}))
}

// Under READ COMMITTED and without the version predicate, two writers who loaded the same stock
// both commit: the batch of 10 holds 20 and one version bump is lost (cosmicpython/code#53).
// With it (the store as shipped), the second UPDATE re-reads the row the first committed, matches
// no row, and conflicts.
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
				postgres.DropVersionCheck(s)
			}
			got := twoWritersOfTen(t, s, s.SetBeforeCommit)
			assert.Equal(t, c.wantConflicted, got.conflicts, "conflicts")
			var allocated, version int
			require.NoError(t, s.Pool().QueryRow(ctx, "SELECT COALESCE(SUM(qty), 0) FROM allocations").Scan(&allocated))
			require.NoError(t, s.Pool().QueryRow(ctx, "SELECT version_number FROM products WHERE sku = 'CHAIR'").Scan(&version))
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
		postgres.DisableCache(s) // read what the rows hold
		addBatch(t, s, "LAMP", "b1", 10)
		ran := 0
		cctx, cancel := context.WithCancel(ctx)
		postgres.SetAfterStatement(s, func(_ context.Context, n int) {
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
		require.NoError(t, s.Pool().QueryRow(ctx, "SELECT MIN(id), MAX(id), COUNT(*) FROM allocations").Scan(&into.min, &into.max, &into.count))
	}
	stats(&before)

	var statements int
	postgres.SetAfterStatement(s, func(_ context.Context, n int) { statements = n })
	_, err := service.Allocate(ctx, service.Bootstrap(s, fakes.NewMailer()), "new", "BIG", 1)
	require.NoError(t, err)
	stats(&after)
	assert.Equal(t, before.min, after.min, "the oldest line's row was rewritten")
	assert.Equal(t, before.count+1, after.count)
	assert.Equal(t, before.max+1, after.max, "one new row")
	assert.Equal(t, 4, statements, "statements of the commit (product, batch, line, event log)")
}

func TestSQLStatesOfConflicts(t *testing.T) {
	for _, c := range []struct {
		code     string
		conflict bool
	}{
		{"40001", true},  // serialization_failure
		{"40P01", true},  // deadlock_detected
		{"23505", false}, // unique_violation: the caller's to interpret
		{"57014", false}, // query_canceled
	} {
		t.Run(c.code, func(t *testing.T) {
			err := postgres.MapError("commit", &pgconn.PgError{Code: c.code})
			assert.Equal(t, c.conflict, errors.Is(err, service.ErrConcurrentUpdate), "SQLSTATE %s: %v", c.code, err)
			var pg *pgconn.PgError
			assert.ErrorAs(t, err, &pg, "the driver's error stays wrapped")
		})
	}
	assert.NoError(t, postgres.MapError("commit", nil))
}

func TestOpenIsIdempotent(t *testing.T) {
	s := open(t)
	addBatch(t, s, "LAMP", "b1", 7)
	var db string
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT current_database()").Scan(&db))
	u, err := url.Parse(server(t))
	require.NoError(t, err)
	u.Path = "/" + db
	again, err := postgres.Open(ctx, u.String())
	require.NoError(t, err, "opening a database that has the schema")
	defer again.Close()
	p, ok := again.Product("LAMP")
	require.True(t, ok)
	assert.Equal(t, 7, p.Batches[0].AvailableQuantity())
	var version int
	require.NoError(t, again.Pool().QueryRow(ctx, "SELECT version FROM stockbus_schema").Scan(&version))
	assert.Equal(t, postgres.SchemaVersion, version)
}

func TestOpenFailsClearly(t *testing.T) {
	_, err := postgres.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	assert.Error(t, err, "Open of a server that is not there")
}

// While a commit that read A-READ without changing it is between its check of A-READ and its
// COMMIT, a writer of A-READ waits for it (FOR SHARE), so what the commit decided from A-READ
// still holds when it lands; then the writer goes on and commits too.
func TestReadProductIsLockedUntilCommit(t *testing.T) {
	s := open(t)
	addBatch(t, s, "A-READ", "r1", 5)
	addBatch(t, s, "B-WRITE", "w1", 5)
	paused, resume := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	postgres.SetAfterStatement(s, func(_ context.Context, n int) {
		if n == 1 && first.CompareAndSwap(false, true) { // the reader, after its check of A-READ
			close(paused)
			<-resume
		}
	})
	uow := service.Bootstrap(s, fakes.NewMailer(), service.WithRetries(0))
	reader := make(chan error, 1)
	go func() {
		reader <- uow.Do(ctx, func(ctx context.Context, repo service.Repository) error {
			if _, err := repo.Get(ctx, "A-READ"); err != nil {
				return err
			}
			p, err := repo.Get(ctx, "B-WRITE")
			if err != nil {
				return err
			}
			_, err = p.Allocate(domain.OrderLine{OrderID: "o1", SKU: "B-WRITE", Qty: 1})
			return err
		})
	}()
	<-paused
	writer := make(chan error, 1)
	go func() { _, err := service.Allocate(ctx, uow, "o2", "A-READ", 1); writer <- err }()

	var db string
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT current_database()").Scan(&db))
	blocked := false
	for !blocked {
		select {
		case err := <-writer:
			close(resume)
			require.NoError(t, <-reader)
			t.Fatalf("the writer of A-READ committed (err %v) while a commit that read it was open", err)
		default:
		}
		var waiting int
		require.NoError(t, s.Pool().QueryRow(ctx,
			"SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", db).Scan(&waiting))
		blocked = waiting > 0
		time.Sleep(time.Millisecond) // polling for a state, not timing anything
	}
	close(resume)
	require.NoError(t, <-reader, "the reader's commit")
	require.NoError(t, <-writer, "the writer's commit, after the reader's")
	a, _ := s.Product("A-READ")
	b, _ := s.Product("B-WRITE")
	assert.Equal(t, [2]int{1, 1}, [2]int{a.VersionNumber, b.VersionNumber})
}

// Two stores on one database (two processes, say) see each other's commits: the cache is keyed
// by the row version, which every commit bumps.
func TestTwoStoresOnOneDatabase(t *testing.T) {
	a := open(t)
	var db string
	require.NoError(t, a.Pool().QueryRow(ctx, "SELECT current_database()").Scan(&db))
	u, err := url.Parse(server(t))
	require.NoError(t, err)
	u.Path = "/" + db
	b, err := postgres.Open(ctx, u.String())
	require.NoError(t, err)
	defer b.Close()
	addBatch(t, a, "LAMP", "b1", 10)
	ua, ub := service.Bootstrap(a, fakes.NewMailer()), service.Bootstrap(b, fakes.NewMailer())
	for i := range 4 {
		uow := []service.UnitOfWork{ua, ub}[i%2]
		_, err := service.Allocate(ctx, uow, fmt.Sprintf("o%d", i), "LAMP", 1)
		require.NoError(t, err, "allocation %d", i)
	}
	for name, s := range map[string]*postgres.Store{"a": a, "b": b} {
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
