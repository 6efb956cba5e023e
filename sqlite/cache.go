package sqlite

import (
	"sync"

	"github.com/stockbus/stockbus/domain"
)

// cache keeps the last product the store loaded or committed for each sku, with its row version.
// Every commit that changes a product bumps its version, so a cached product whose version is
// still the row's is exactly what the rows hold, and a load reads the version instead of every
// batch and line: a product of 100,000 lines loads in one small query. This holds as long as
// whatever writes the tables bumps the version, as this package does. Cached products are never
// changed; transactions work on clones, which share their allocation sets.
type cache struct {
	mu  sync.Mutex
	m   map[string]cached
	off bool // set by tests that must read every row
}

type cached struct {
	version int64
	p       *domain.Product
}

func (c *cache) get(sku string, version int64) (*domain.Product, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[sku]
	if !ok || e.version != version || c.off {
		return nil, false
	}
	return e.p, true
}

// put remembers p, which must not change afterwards, as the product at version, unless a newer
// version is already known.
func (c *cache) put(sku string, version int64, p *domain.Product) {
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
