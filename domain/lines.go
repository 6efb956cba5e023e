package domain

import (
	"sync"
)

// The lines allocated to a batch are kept in an append-only log of changes, shared by every copy
// of the batch. A change (a line allocated, or a tombstone for a line deallocated) is appended;
// a Batch value sees the first n entries of its log, its view. Entries are never changed once
// appended, so a copy of a Batch shares all its lines in O(1), and a change to one copy is an
// entry past the other copy's view, which it never sees.
//
// The shape is chosen for what a unit of work does: copy a product, look up one order, add one
// line, commit. Appending is O(1) and, amortized, allocates nothing, however many lines the batch
// holds; looking an order up is one map lookup. A view may append in place only when it ends
// where the log ends. When another copy appended first (two transactions that loaded the same
// product), the view forks: it gets a new log layer whose parent is the old log up to the view's
// end. A chain of layers is merged once it grows deep, so lookups stay O(1).
//
// Every log is safe for concurrent use: copies of one batch in different goroutines (units of
// work) read and append under its lock.

// lineLog is one layer of a batch's log: the entries at positions base, base+1, ..., above the
// first base positions of parent (none when parent is nil).
type lineLog struct {
	parent *lineLog
	base   int
	depth  int // layers below this one

	mu      sync.Mutex
	entries []logEntry
	index   map[uint64]int32 // hash -> position of the latest entry of this layer with that hash
}

// logEntry is one change: line was allocated, or, for a tombstone, deallocated.
type logEntry struct {
	line      OrderLine
	hash      uint64 // keyHash of the line's key
	prev      int32  // position of the previous entry of this layer with the same hash; -1 if none
	tombstone bool
}

// maxLogDepth is how many layers a chain may have before a fork merges all but the bottom one.
const maxLogDepth = 4

// lineView is what a Batch sees of its log: the first n positions. The zero value is empty.
type lineView struct {
	log *lineLog
	n   int
}

// keyHash is FNV-1a over the key (order id, a separator, sku), computed without building the key
// string, then mixed (splitmix64) so that keys differing only in the last byte spread.
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
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// find returns the latest entry for the key that v sees, and whether there is one. The key's
// line is held when there is one and it is not a tombstone.
func (v lineView) find(hash uint64, orderID, sku string) (logEntry, bool) {
	n := v.n
	for l := v.log; l != nil; n, l = l.base, l.parent {
		if n <= l.base {
			continue // the view ends below this layer
		}
		l.mu.Lock()
		p, ok := l.index[hash]
		entries := l.entries // entries below len are never changed: read them unlocked
		l.mu.Unlock()
		for ok && int(p) >= l.base {
			e := &entries[int(p)-l.base]
			if int(p) < n && e.line.OrderID == orderID && e.line.SKU == sku {
				return *e, true
			}
			p, ok = e.prev, e.prev >= 0
		}
	}
	return logEntry{}, false
}

// held returns the line of the key that v holds, if any.
func (v lineView) held(hash uint64, orderID, sku string) (OrderLine, bool) {
	e, ok := v.find(hash, orderID, sku)
	if !ok || e.tombstone {
		return OrderLine{}, false
	}
	return e.line, true
}

// with returns v with e appended: in place when v ends where its log ends, else in a fork.
func (v lineView) with(e logEntry) lineView {
	if l := v.log; l != nil {
		l.mu.Lock()
		if l.base+len(l.entries) == v.n {
			l.add(e)
			l.mu.Unlock()
			return lineView{log: l, n: v.n + 1}
		}
		l.mu.Unlock()
	}
	l := v.fork()
	l.add(e) // l is new: no other view has it yet
	return lineView{log: l, n: v.n + 1}
}

// add appends e to l, which the caller has locked or alone can reach.
func (l *lineLog) add(e logEntry) {
	e.prev = -1
	if p, ok := l.index[e.hash]; ok {
		e.prev = p
	}
	if l.index == nil {
		l.index = map[uint64]int32{}
	}
	l.index[e.hash] = int32(l.base + len(l.entries))
	l.entries = append(l.entries, e)
}

// fork returns a new, empty layer above the first v.n positions of v's log. When the chain is
// deep, the new layer holds instead what all the layers but the bottom one hold up to v.n, so
// lookups keep visiting at most maxLogDepth layers.
func (v lineView) fork() *lineLog {
	if v.log == nil {
		return &lineLog{}
	}
	if v.log.depth+1 < maxLogDepth {
		return &lineLog{parent: v.log, base: v.n, depth: v.log.depth + 1}
	}
	bottom, n := v.log, v.n // n: how much of bottom v sees
	for bottom.parent != nil {
		n, bottom = bottom.base, bottom.parent
	}
	merged := &lineLog{parent: bottom, base: n, depth: 1}
	for _, e := range v.entries(n, v.n) {
		merged.add(e)
	}
	return merged
}

// entries returns the entries v sees at positions from..to-1, oldest first.
func (v lineView) entries(from, to int) []logEntry {
	var layers [][]logEntry
	n := v.n
	for l := v.log; l != nil && n > from; n, l = l.base, l.parent {
		if n <= l.base {
			continue
		}
		l.mu.Lock()
		entries := l.entries[:n-l.base]
		l.mu.Unlock()
		lo := max(from, l.base) - l.base
		hi := min(to, n) - l.base
		if lo < hi {
			layers = append(layers, entries[lo:hi])
		}
	}
	var all []logEntry
	for i := len(layers) - 1; i >= 0; i-- {
		all = append(all, layers[i]...)
	}
	return all
}

// lines returns the lines v holds, oldest allocation first.
func (v lineView) lines(count int) []OrderLine {
	all := v.entries(0, v.n)
	type key struct{ orderID, sku string }
	decided := make(map[key]bool, count)
	lines := make([]OrderLine, count)
	k := count
	for i := len(all) - 1; i >= 0; i-- { // the latest entry of a key decides
		e := &all[i]
		if decided[key{e.line.OrderID, e.line.SKU}] {
			continue
		}
		decided[key{e.line.OrderID, e.line.SKU}] = true
		if !e.tombstone {
			k--
			lines[k] = e.line
		}
	}
	return lines[k:]
}

// changes returns what v holds that since does not (added) and what since holds that v does not
// (removed), oldest change first, when v was made from since by appending: ok is false when the
// two do not share since's view.
func (v lineView) changes(since lineView) (added, removed []OrderLine, ok bool) {
	if !v.extends(since) {
		return nil, nil, false
	}
	type key struct{ orderID, sku string }
	seen := map[key]bool{}
	for _, e := range v.entries(since.n, v.n) {
		k := key{e.line.OrderID, e.line.SKU}
		if seen[k] {
			continue
		}
		seen[k] = true
		before, had := since.held(e.hash, k.orderID, k.sku)
		after, has := v.held(e.hash, k.orderID, k.sku)
		switch {
		case had && has && before == after:
		default:
			if had {
				removed = append(removed, before)
			}
			if has {
				added = append(added, after)
			}
		}
	}
	return added, removed, true
}

// extends reports whether v sees everything since sees, in the same entries: the layer that holds
// since's last position is the same for both, and so is everything below it.
func (v lineView) extends(since lineView) bool {
	switch {
	case since.n == 0:
		return true
	case since.n > v.n:
		return false
	}
	return v.layerAt(since.n-1) == since.layerAt(since.n-1)
}

// layerAt returns the layer that holds position p of v.
func (v lineView) layerAt(p int) *lineLog {
	n := v.n
	for l := v.log; l != nil; n, l = l.base, l.parent {
		if p >= l.base && p < n {
			return l
		}
	}
	return nil
}
