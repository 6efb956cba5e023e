package domain

import (
	"math/bits"
	"strings"
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
// holds; looking an order up is one probe of a hash index. A view may append in place only when
// it ends where the log ends. When another copy appended first (two transactions that loaded the
// same product), the view forks: it gets a new log layer whose parent is the old log up to the
// view's end. A chain of layers is merged once it grows deep, so lookups stay O(1).
//
// A layer holds no pointer that grows with its lines, so the garbage collector does not scan a
// million lines, nor keep a million order-ID strings alive: the order id and sku of each entry
// are copied into the layer's byte arena, and an entry holds where they are. Entries and arena
// bytes live in chunks that are never moved once made (each chunk twice the size of the one
// before), so appending never copies old entries, and bytes below what a reader was shown never
// change. The index is open addressing over the hashes, pointer-free too.
//
// Every log is safe for concurrent use: copies of one batch in different goroutines (units of
// work) read and append under its lock; entries and key bytes that a reader was shown under the
// lock are read without it, since they never change.

// lineLog is one layer of a batch's log: the entries at positions base, base+1, ..., above the
// first base positions of parent (none when parent is nil).
type lineLog struct {
	parent *lineLog
	base   int
	depth  int // layers below this one

	mu        sync.Mutex
	n         int          // entries in this layer
	entries   [][]logEntry // chunk k holds firstChunk<<k entries, from layer position firstChunk<<k-firstChunk
	keys      [][]byte     // the key arena: each entry's order id, then its sku
	keyEnd    int          // bytes used of the last arena chunk
	groups    []group      // the index, open addressing over the hashes: 1<<groupBits groups
	groupBits int
	used      int // index slots in use

	// Room for the first chunks and the first group, so that a fork that adds a line or two
	// (a transaction that loaded a product another one changed since) allocates once.
	firstEntries [firstChunk]logEntry
	entryChunks  [1][]logEntry
	firstKeys    [minKeyChunk]byte
	keyChunks    [1][]byte
	firstGroup   [1]group
}

// logEntry is one change: the line at key was allocated with qty, or, for a tombstone,
// deallocated. It holds no pointer.
type logEntry struct {
	hash      uint64 // keyHash of the line's key
	chunk     uint32 // the arena chunk that holds the key
	off       uint32 // where the key starts in that chunk
	idLen     uint32 // the order id's length; the sku follows it
	skuLen    uint32
	prev      int32 // layer position of the previous entry of this layer with the same hash; -1 if none
	qty       int32 // at most MaxQty
	tombstone bool
}

const (
	// maxLogDepth is how many layers a chain may have before a fork merges all but the bottom one.
	maxLogDepth = 4
	// firstChunk is how many entries a layer's first chunk holds; each next chunk holds twice as
	// many as the one before, so a fork that adds one line stays small.
	firstChunkBits = 3
	firstChunk     = 1 << firstChunkBits
	// minKeyChunk and maxKeyChunk bound the size of a new arena chunk (a key longer than
	// maxKeyChunk gets a chunk of its own).
	minKeyChunk = 64
	maxKeyChunk = 64 << 10
)

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

// chunkOf returns the chunk and the place in it of layer position i.
func chunkOf(i int) (chunk, at int) {
	j := i + firstChunk
	chunk = bits.Len(uint(j)) - 1 - firstChunkBits
	return chunk, j - firstChunk<<chunk
}

// entryAt returns the entry at layer position i of entries, a copy of a layer's chunk list.
func entryAt(entries [][]logEntry, i int) *logEntry {
	c, at := chunkOf(i)
	return &entries[c][at]
}

// keyOf returns the bytes of e's order id and sku in keys, a copy of a layer's arena list.
func keyOf(keys [][]byte, e *logEntry) (orderID, sku []byte) {
	k := keys[e.chunk][e.off:]
	return k[:e.idLen], k[e.idLen : e.idLen+e.skuLen]
}

// is reports whether e's key is (orderID, sku).
func is(keys [][]byte, e *logEntry, orderID, sku string) bool {
	id, s := keyOf(keys, e)
	return string(id) == orderID && string(s) == sku // compared without a copy
}

// group is one cache line of the index: groupSlots slots, each 0 when empty, else the top 32
// bits of a hash and, below them, 1 + the layer position of the latest entry with that hash.
// Keeping the positions beside the hashes means that the probe that finds where a new hash goes
// has already brought in the line that the insertion writes. A hash's home group is given by
// its top bits, which the slot keeps, so growing the index reads no entry and writes the new
// groups in order.
type group [groupSlots]uint64

// groupSlots is how many slots fit a 64-byte cache line.
const groupSlots = 8

// home returns the group where the search for a hash with these top 32 bits starts, in an index
// of 1<<k groups (k at most 32).
func home(top uint64, k int) uint64 { return top >> (32 - k) }

// latest returns the layer position of the latest entry with the hash, if any. The caller holds
// l's lock or alone can reach l. Looking up a hash that l does not hold reads one cache line of
// the index, mostly, and no entry.
func (l *lineLog) latest(hash uint64) (int, bool) {
	if l.groups == nil {
		return 0, false
	}
	mask := uint64(len(l.groups) - 1)
	top := hash >> 32
	for g := home(top, l.groupBits); ; g = (g + 1) & mask {
		for _, slot := range &l.groups[g] {
			switch {
			case slot == 0:
				return 0, false
			case slot>>32 == top:
				if i := int(uint32(slot)) - 1; entryAt(l.entries, i).hash == hash {
					return i, true
				}
			}
		}
	}
}

// index records that layer position i is the latest entry with the hash and returns the one
// before it, if any. The caller holds l's lock or alone can reach l.
func (l *lineLog) index(hash uint64, i int) (prev int, ok bool) {
	if 2*(l.used+1) > groupSlots*len(l.groups) {
		l.grow()
	}
	mask := uint64(len(l.groups) - 1)
	top := hash >> 32
	for g := home(top, l.groupBits); ; g = (g + 1) & mask {
		grp := &l.groups[g]
		for j, slot := range grp {
			switch {
			case slot == 0:
				grp[j] = top<<32 | uint64(i+1)
				l.used++
				return 0, false
			case slot>>32 == top:
				if p := int(uint32(slot)) - 1; entryAt(l.entries, p).hash == hash {
					grp[j] = top<<32 | uint64(i+1)
					return p, true
				}
			}
		}
	}
}

// grow doubles the index (or makes the first one). It moves the slots in the order of the old
// groups, whose slots go to two neighbouring new groups each, so the writes stream.
func (l *lineLog) grow() {
	old := l.groups
	if old == nil {
		l.groups = l.firstGroup[:]
		return
	}
	l.groups = make([]group, 2*len(old))
	l.groupBits++
	mask := uint64(len(l.groups) - 1)
	for g := range old {
		for _, slot := range &old[g] {
			if slot == 0 {
				continue
			}
		probe:
			for h := home(slot>>32, l.groupBits); ; h = (h + 1) & mask {
				grp := &l.groups[h]
				for j := range grp {
					if grp[j] == 0 {
						grp[j] = slot
						break probe
					}
				}
			}
		}
	}
}

// find returns the latest entry for the key that v sees, and whether there is one. The key's
// line is held when there is one and it is not a tombstone. The entry never changes.
func (v lineView) find(hash uint64, orderID, sku string) (*logEntry, bool) {
	// A view sees at least one entry of each layer it reaches: its own layer holds the entry it
	// was made with, and each layer was forked from a view that saw its parent.
	n := v.n
	for l := v.log; l != nil; n, l = l.base, l.parent {
		l.mu.Lock()
		i, ok := l.latest(hash)
		entries, keys := l.entries, l.keys // what is below l.n never changes: read it unlocked
		l.mu.Unlock()
		for ok {
			e := entryAt(entries, i)
			if l.base+i < n && is(keys, e, orderID, sku) {
				return e, true
			}
			i, ok = int(e.prev), e.prev >= 0
		}
	}
	return nil, false
}

// held returns the line of the key that v holds, if any.
func (v lineView) held(hash uint64, orderID, sku string) (OrderLine, bool) {
	e, ok := v.find(hash, orderID, sku)
	if !ok || e.tombstone {
		return OrderLine{}, false
	}
	return OrderLine{OrderID: orderID, SKU: sku, Qty: int(e.qty)}, true
}

// with returns v with the line appended (allocated, or deallocated for a tombstone): in place
// when v ends where its log ends, else in a fork. hash is keyHash of the line's key and
// line.Qty is in 1..MaxQty.
func (v lineView) with(line OrderLine, hash uint64, tombstone bool) lineView {
	if l := v.log; l != nil {
		l.mu.Lock()
		if l.base+l.n == v.n {
			add(l, hash, line.OrderID, line.SKU, line.Qty, tombstone)
			l.mu.Unlock()
			return lineView{log: l, n: v.n + 1}
		}
		l.mu.Unlock()
	}
	l := v.fork()
	add(l, hash, line.OrderID, line.SKU, line.Qty, tombstone) // l is new: no other view has it yet
	return lineView{log: l, n: v.n + 1}
}

// add appends an entry to l, which the caller has locked or alone can reach. The key is a
// string, or the bytes of another layer's arena when a fork merges layers.
func add[K string | []byte](l *lineLog, hash uint64, orderID, sku K, qty int, tombstone bool) {
	c, at := chunkOf(l.n)
	switch {
	case c > 0 && c == len(l.entries):
		l.entries = append(l.entries, make([]logEntry, firstChunk<<c))
	case c == len(l.entries):
		l.entries = append(l.entryChunks[:0], l.firstEntries[:])
	}
	e := &l.entries[c][at]
	*e = logEntry{hash: hash, idLen: uint32(len(orderID)), skuLen: uint32(len(sku)), prev: -1, qty: int32(qty), tombstone: tombstone}
	e.chunk, e.off = store(l, orderID, sku)
	if p, ok := l.index(hash, l.n); ok {
		e.prev = int32(p)
	}
	l.n++
}

// store copies the key into l's arena and returns where it starts. A chunk is made at its full
// length and never resliced, so its bytes that readers were shown never move nor change.
func store[K string | []byte](l *lineLog, orderID, sku K) (chunk, off uint32) {
	size := len(orderID) + len(sku)
	last := len(l.keys) - 1
	switch {
	case last < 0 && size <= minKeyChunk:
		l.keys = append(l.keyChunks[:0], l.firstKeys[:])
		last, l.keyEnd = 0, 0
	case last < 0:
		l.keys = append(l.keyChunks[:0], make([]byte, size))
		last, l.keyEnd = 0, 0
	case l.keyEnd+size > len(l.keys[last]):
		l.keys = append(l.keys, make([]byte, max(min(2*len(l.keys[last]), maxKeyChunk), size)))
		last, l.keyEnd = last+1, 0
	}
	k := l.keys[last][l.keyEnd:]
	copy(k, orderID)
	copy(k[len(orderID):], sku)
	off = uint32(l.keyEnd)
	l.keyEnd += size
	return uint32(last), off
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
	v.each(n, v.n, func(e *logEntry, orderID, sku []byte) {
		add(merged, e.hash, orderID, sku, int(e.qty), e.tombstone)
	})
	return merged
}

// each calls f with every entry v sees at positions from..to-1, oldest first, and its key.
func (v lineView) each(from, to int, f func(e *logEntry, orderID, sku []byte)) {
	type part struct {
		entries  [][]logEntry
		keys     [][]byte
		from, to int // layer positions
	}
	var parts []part // at most maxLogDepth; those outside from..to-1 are empty
	n := v.n
	for l := v.log; l != nil; n, l = l.base, l.parent {
		l.mu.Lock()
		p := part{entries: l.entries, keys: l.keys}
		l.mu.Unlock()
		p.from, p.to = max(from, l.base)-l.base, min(to, n)-l.base
		parts = append(parts, p)
	}
	for k := len(parts) - 1; k >= 0; k-- {
		p := parts[k]
		for i := p.from; i < p.to; i++ {
			e := entryAt(p.entries, i)
			id, sku := keyOf(p.keys, e)
			f(e, id, sku)
		}
	}
}

// change is an entry as a line: allocated, or deallocated for a tombstone.
type change struct {
	line      OrderLine
	hash      uint64
	tombstone bool
}

// entries returns the entries v sees at positions from..to-1, oldest first, as lines. Their
// strings are cut from one string, so the call allocates O(1) times however many it returns.
func (v lineView) entries(from, to int) []change {
	var all []change
	var lens []int // the order id's and the sku's length of each entry
	var b strings.Builder
	v.each(from, to, func(e *logEntry, orderID, sku []byte) {
		all = append(all, change{line: OrderLine{Qty: int(e.qty)}, hash: e.hash, tombstone: e.tombstone})
		lens = append(lens, len(orderID), len(sku))
		b.Write(orderID)
		b.Write(sku)
	})
	s := b.String()
	for i := range all {
		id, sku := lens[2*i], lens[2*i+1]
		all[i].line.OrderID, all[i].line.SKU = s[:id], s[id:id+sku]
		s = s[id+sku:]
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
// since's last position, since's own layer (a view sees an entry of its layer), is the same for
// both, and so is everything below it.
func (v lineView) extends(since lineView) bool {
	switch {
	case since.n == 0:
		return true
	case since.n > v.n:
		return false
	}
	return v.layerAt(since.n-1) == since.log
}

// layerAt returns the layer that holds position p of v, which is below v.n: the first one down
// the chain that starts at or below p (each layer's view of its parent ends at its own base).
func (v lineView) layerAt(p int) *lineLog {
	for l := v.log; l != nil; l = l.parent {
		if p >= l.base {
			return l
		}
	}
	return nil
}
