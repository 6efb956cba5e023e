package service

import "context"

// CommitHook is a test hook that a Store calls at a point of a commit's life, with the skus of
// the products the transaction has seen, in first-seen order. The stores of this module (the
// fakes, sqlite, postgres) call a before-commit hook at the start of every Commit attempt, after
// the work is done and before the store takes any lock or checks for conflicts, and an
// after-commit hook once a Commit succeeded, before the unit of work hands the events to the bus.
// A hook runs on the committing goroutine with no store lock held, so it may block (to force an
// interleaving) or commit through the same store (to play another writer). It must not retain
// skus.
//
// It is an alias, not a defined type, so that an interface spelling the func type out (such as
// servicetest.HookedStore) and a plain func literal are the same type: every store's setter
// satisfies them all.
type CommitHook = func(ctx context.Context, skus []string)
