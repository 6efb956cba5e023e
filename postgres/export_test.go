package postgres

import "context"

// SetAfterStatement makes every commit call f after each statement it ran, n counting from 1.
// Set it before the store is used.
func SetAfterStatement(s *Store, f func(ctx context.Context, n int)) { s.afterStatement = f }

// DropVersionCheck makes commits write without the version predicate and without checking
// unchanged products: the store the version number is there to prevent.
func DropVersionCheck(s *Store) { s.noVersionCheck = true }

// MapError is mapError, for the table of SQLSTATEs.
var MapError = mapError

// DisableCache makes every load read all of a product's rows.
func DisableCache(s *Store) { s.cache.Disable() }
