package domain

import "cmp"

// lineNode is a node of a persistent treap of order lines keyed by (OrderID, SKU).
// Nodes are never modified after they are built: every change copies the path from the
// root to the change, so a copy of a batch shares its allocations with the original in
// O(1) and each insert or delete costs O(log n) new nodes, however many lines the batch holds.
type lineNode struct {
	line        OrderLine
	seq         uint64 // allocation order, for "most recently allocated first"
	prio        uint64 // heap priority, a hash of the key so the shape is deterministic
	left, right *lineNode
}

func compareKey(orderID, sku string, n *lineNode) int {
	if c := cmp.Compare(orderID, n.line.OrderID); c != 0 {
		return c
	}
	return cmp.Compare(sku, n.line.SKU)
}

// keyHash is FNV-1a over the key, computed without building the key string.
func keyHash(orderID, sku string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(orderID); i++ {
		h = (h ^ uint64(orderID[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(sku); i++ {
		h = (h ^ uint64(sku[i])) * prime
	}
	// Finalize (splitmix64) so that keys differing only in the last byte get unrelated priorities.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

func lookup(n *lineNode, orderID, sku string) (*lineNode, bool) {
	for n != nil {
		switch c := compareKey(orderID, sku, n); {
		case c < 0:
			n = n.left
		case c > 0:
			n = n.right
		default:
			return n, true
		}
	}
	return nil, false
}

// insert returns a tree holding x and everything in n. x's key must not be in n.
func insert(n, x *lineNode) *lineNode {
	if n == nil {
		return x
	}
	if x.prio > n.prio {
		x.left, x.right = split(n, x.line.OrderID, x.line.SKU)
		return x
	}
	c := *n
	if compareKey(x.line.OrderID, x.line.SKU, n) < 0 {
		c.left = insert(n.left, x)
	} else {
		c.right = insert(n.right, x)
	}
	return &c
}

// split returns the keys of n below (orderID, sku) and the keys at or above it.
func split(n *lineNode, orderID, sku string) (below, rest *lineNode) {
	if n == nil {
		return nil, nil
	}
	c := *n
	if compareKey(orderID, sku, n) > 0 {
		c.right, rest = split(n.right, orderID, sku)
		return &c, rest
	}
	below, c.left = split(n.left, orderID, sku)
	return below, &c
}

// remove returns n without the key; n itself is unchanged.
func remove(n *lineNode, orderID, sku string) *lineNode {
	if n == nil {
		return nil
	}
	c := *n
	switch k := compareKey(orderID, sku, n); {
	case k < 0:
		c.left = remove(n.left, orderID, sku)
	case k > 0:
		c.right = remove(n.right, orderID, sku)
	default:
		return merge(n.left, n.right)
	}
	return &c
}

// merge joins two trees where every key of a is below every key of b.
func merge(a, b *lineNode) *lineNode {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		c := *a
		c.right = merge(a.right, b)
		return &c
	default:
		c := *b
		c.left = merge(a, b.left)
		return &c
	}
}

// walk calls fn for every node in key order until fn returns false.
func walk(n *lineNode, fn func(*lineNode) bool) bool {
	if n == nil {
		return true
	}
	return walk(n.left, fn) && fn(n) && walk(n.right, fn)
}
