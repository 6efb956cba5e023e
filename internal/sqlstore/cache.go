// Package sqlstore holds what the SQL stores (sqlite, postgres) share: the per-sku product cache
// keyed by row version, a transaction's bookkeeping, the event log's row type, and the outbox
// table behind the outbox.Store port (OutboxTable), which each store runs in its own Dialect over
// a two-method DB port, so that only the SQL and the driver differ between them.
package sqlstore

import (
	"sync"

	"github.com/stockbus/stockbus/domain"
)

// Cache keeps the last product a store loaded or committed for each sku, with its row version.
// Every commit that changes a product bumps its version, so a cached product whose version is
// still the row's is exactly what the rows hold, and a load reads the version instead of every
// batch and line: a product of 100,000 lines loads in one small query. This holds as long as
// whatever writes the tables bumps the version, as both SQL stores do. Cached products are never
// changed; transactions work on clones, which share their allocation sets. The zero value is an
// empty cache, safe for concurrent use.
type Cache struct {
	mu  sync.Mutex
	m   map[string]cached
	off bool
}

type cached struct {
	version int64
	p       *domain.Product
}

// Disable makes Get miss and Put do nothing from now on, for tests that must read every row.
func (c *Cache) Disable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = true
}

// Get returns the product cached for sku at exactly version, if any. It must not be changed.
func (c *Cache) Get(sku string, version int64) (*domain.Product, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[sku]
	if !ok || e.version != version || c.off {
		return nil, false
	}
	return e.p, true
}

// Put remembers p, which must not change afterwards, as the product at version, unless a newer
// version is already known.
func (c *Cache) Put(sku string, version int64, p *domain.Product) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off {
		return
	}
	if c.m == nil {
		c.m = map[string]cached{}
	}
	if e, ok := c.m[sku]; !ok || e.version < version {
		c.m[sku] = cached{version, p}
	}
}
