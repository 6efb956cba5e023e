package domain

import (
	"math/bits"
	"sort"
	"strings"
	"sync"
)

// The lines allocated to a batch are kept in an append-only log of changes, shared by every copy
// of the batch. A change (a line allocated, or a tombstone for a line deallocated) is appended;
// a Batch value sees the positions of its log below n, its view, except for the gaps of the view.
// Entries are never changed once appended, so a copy of a Batch shares all its lines in O(1), and
// a change to one copy is an entry the other copy never sees.
//
// The shape is chosen for what a unit of work does: copy a product, look up one order, add one
// line, commit. Appending is O(1) and, amortized, allocates nothing, however many lines the batch
// holds; looking an order up is one probe of a hash index. A view ends where the log ends as long
// as no other copy appended; then it appends in place. When another copy appended first (two
// transactions that loaded the same product), the view still appends at the log's end, and the
// entries between its old end and its new entry become a gap: positions it does not see. A gap
// costs one small list per view that made it, and no copy of any entry, so the copy that wins the
// race to commit is as cheap to go on from as the one that appended first. A view whose lineage
// has made many gaps (maxGaps) is compacted instead: its lines are copied into a new log.
//
// A log holds no pointer that grows with its lines, so the garbage collector does not scan a
// million lines, nor keep a million order-ID strings alive: the order id and sku of each entry
// are copied into the log's byte arena, and an entry holds where they are. Entries and arena
// bytes live in chunks that are never moved once made (each chunk twice the size of the one
// before), so appending never copies old entries, and bytes below what a reader was shown never
// change. The index is open addressing over the hashes, pointer-free too.
//
// Every log is safe for concurrent use: copies of one batch in different goroutines (units of
// work) read and append under its lock; entries and key bytes that a reader was shown under the
// lock are read without it, since they never change. An entry of a copy that was dropped (a
// transaction that lost a conflict) stays in the log, like a tombstone: a log grows with the
// changes made to any copy of its batch.

// lineLog is a batch's log: the entries at positions 0, 1, ..., n-1.
type lineLog struct {
	mu        sync.Mutex
	n         int          // entries in the log
	entries   [][]logEntry // chunk k holds firstChunk<<k entries, from position firstChunk<<k-firstChunk
	keys      [][]byte     // the key arena: each entry's order id, then its sku
	keyEnd    int          // bytes used of the last arena chunk
	groups    []group      // the index, open addressing over the hashes: 1<<groupBits groups
	groupBits int
	used      int // index slots in use

	// Room for the first chunks and the first group, so that a batch with a line or two
	// allocates once for its log.
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
	prev      int32 // position of the previous entry with the same hash; -1 if none
	qty       int32 // at most MaxQty
	tombstone bool
}

const (
	// maxGaps is how many gaps a view may have; one that would make another is compacted. A gap
	// is made by the winner of a conflict, a few hundred in a million orders of the simulator,
	// and costs 16 bytes, copied once per gap made after it.
	maxGaps = 256
	// firstChunk is how many entries a log's first chunk holds; each next chunk holds twice as
	// many as the one before, so a batch with few lines stays small.
	firstChunkBits = 3
	firstChunk     = 1 << firstChunkBits
	// minKeyChunk and maxKeyChunk bound the size of a new arena chunk (a key longer than
	// maxKeyChunk gets a chunk of its own).
	minKeyChunk = 64
	maxKeyChunk = 64 << 10
)

// lineView is what a Batch sees of its log: the positions below n but those in gaps. The zero
// value is empty. Position n-1, when n > 0, is always seen: the view appended it.
type lineView struct {
	log  *lineLog
	n    int
	gaps *gaps // nil when there are none
}

// gaps are the positions below a view's end that the view does not see: sorted, disjoint spans,
// each followed by a position that the view sees. They never change once made, so copies of a
// view share them.
type gaps struct{ spans []span }

// span is the positions from..to-1.
type span struct{ from, to int }

// withGap returns the gaps g and, after them, s, which starts after every span of g. It allocates
// once for a few spans.
func withGap(g *gaps, s span) *gaps {
	var old []span
	if g != nil {
		old = g.spans
	}
	if len(old) < fewGaps {
		few := new(struct {
			gaps
			room [fewGaps]span
		})
		few.spans = append(append(few.room[:0], old...), s)
		return &few.gaps
	}
	return &gaps{spans: append(append(make([]span, 0, len(old)+1), old...), s)}
}

// fewGaps is how many spans withGap makes room for in the allocation of their list.
const fewGaps = 3

// list returns the spans of g, none when g is nil.
func (g *gaps) list() []span {
	if g == nil {
		return nil
	}
	return g.spans
}

// sees reports whether v sees position p.
func (v lineView) sees(p int) bool {
	if p >= v.n {
		return false
	}
	spans := v.gaps.list()
	i := sort.Search(len(spans), func(i int) bool { return spans[i].to > p }) // the first span that ends after p
	return i == len(spans) || p < spans[i].from
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

// chunkOf returns the chunk and the place in it of position i.
func chunkOf(i int) (chunk, at int) {
	j := i + firstChunk
	chunk = bits.Len(uint(j)) - 1 - firstChunkBits
	return chunk, j - firstChunk<<chunk
}

// entryAt returns the entry at position i of entries, a copy of a log's chunk list.
func entryAt(entries [][]logEntry, i int) *logEntry {
	c, at := chunkOf(i)
	return &entries[c][at]
}

// keyOf returns the bytes of e's order id and sku in keys, a copy of a log's arena list.
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
// bits of a hash and, below them, 1 + the position of the latest entry with that hash.
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

// latest returns the position of the latest entry with the hash, if any. The caller holds
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

// index records that position i is the latest entry with the hash and returns the one
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
	l := v.log
	if l == nil {
		return nil, false
	}
	l.mu.Lock()
	i, ok := l.latest(hash)
	entries, keys := l.entries, l.keys // what is below l.n never changes: read it unlocked
	l.mu.Unlock()
	if !ok {
		return nil, false
	}
	return v.chain(entries, keys, i, orderID, sku)
}

// chain returns the latest entry for the key that v sees, walking back from position i, the
// latest entry with the key's hash, in a log with these chunks and arena.
func (v lineView) chain(entries [][]logEntry, keys [][]byte, i int, orderID, sku string) (*logEntry, bool) {
	for {
		e := entryAt(entries, i)
		if v.sees(i) && is(keys, e, orderID, sku) {
			return e, true
		}
		if e.prev < 0 {
			return nil, false
		}
		i = int(e.prev)
	}
}

// held returns the line of the key that v holds, if any.
func (v lineView) held(hash uint64, orderID, sku string) (OrderLine, bool) {
	e, ok := v.find(hash, orderID, sku)
	if !ok || e.tombstone {
		return OrderLine{}, false
	}
	return OrderLine{OrderID: orderID, SKU: sku, Qty: int(e.qty)}, true
}

// with returns v with the line appended (allocated, or deallocated for a tombstone) at the end
// of its log: with no new gap when v ends where the log ends, else with the entries between as a
// gap, or, when v has maxGaps gaps already, in a new log that holds what v sees. hash is keyHash
// of the line's key and line.Qty is in 1..MaxQty.
func (v lineView) with(line OrderLine, hash uint64, tombstone bool) lineView {
	l := v.log
	if l == nil {
		l = &lineLog{}
	}
	l.mu.Lock()
	return v.appendLocked(l, line, hash, tombstone)
}

// appendLocked is with for the caller that holds l's lock, l being v's log or a new one; it
// unlocks l.
func (v lineView) appendLocked(l *lineLog, line OrderLine, hash uint64, tombstone bool) lineView {
	gaps := v.gaps
	if end := l.n; end != v.n {
		if len(gaps.list()) == maxGaps {
			l.mu.Unlock()
			return v.compact().with(line, hash, tombstone)
		}
		gaps = withGap(gaps, span{from: v.n, to: end})
	}
	add(l, hash, line.OrderID, line.SKU, line.Qty, tombstone)
	n := l.n
	l.mu.Unlock()
	return lineView{log: l, n: n, gaps: gaps}
}

// heldOrWith looks the line's key up as find does and, when v holds no line of it, returns v
// with the line allocated as with does, all under one hold of the log's lock: the look-up and
// the append of a product with one batch. held is the quantity held and ok whether there is one;
// then the view is v.
func (v lineView) heldOrWith(line OrderLine, hash uint64) (held int, ok bool, nv lineView) {
	l := v.log
	if l == nil {
		return 0, false, v.with(line, hash, false)
	}
	l.mu.Lock()
	if i, found := l.latest(hash); found {
		if e, found := v.chain(l.entries, l.keys, i, line.OrderID, line.SKU); found && !e.tombstone {
			l.mu.Unlock()
			return int(e.qty), true, v
		}
	}
	return 0, false, v.appendLocked(l, line, hash, false)
}

// compact returns a view, in a new log, of what v sees, without gaps.
func (v lineView) compact() lineView {
	l := &lineLog{}
	v.each(0, v.n, func(e *logEntry, orderID, sku []byte) {
		add(l, e.hash, orderID, sku, int(e.qty), e.tombstone) // l is new: no other view has it yet
	})
	return lineView{log: l, n: l.n}
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

// each calls f with every entry v sees at positions from..to-1, oldest first, and its key; to is
// at most v.n.
func (v lineView) each(from, to int, f func(e *logEntry, orderID, sku []byte)) {
	l := v.log
	if l == nil {
		return
	}
	l.mu.Lock()
	entries, keys := l.entries, l.keys
	l.mu.Unlock()
	gaps := v.gaps.list()
	for i := from; i < to; i++ {
		for len(gaps) > 0 && gaps[0].to <= i {
			gaps = gaps[1:]
		}
		if len(gaps) > 0 && gaps[0].from <= i {
			i = gaps[0].to - 1
			continue
		}
		e := entryAt(entries, i)
		id, sku := keyOf(keys, e)
		f(e, id, sku)
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

// seen returns how many entries v sees.
func (v lineView) seen() int {
	n := v.n
	for _, s := range v.gaps.list() {
		n -= s.to - s.from
	}
	return n
}

// lines returns the lines v holds, count of them, oldest allocation first.
func (v lineView) lines(count int) []OrderLine {
	if v.seen() == count {
		return v.allocated(count)
	}
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

// allocated returns the lines of the count entries v sees, when none is a tombstone: then each
// entry is a line v holds (an order is allocated again only after a tombstone). Their strings
// are cut from one string, and the call allocates three times however many lines it returns.
func (v lineView) allocated(count int) []OrderLine {
	size := 0
	v.each(0, v.n, func(_ *logEntry, orderID, sku []byte) { size += len(orderID) + len(sku) })
	var b strings.Builder
	b.Grow(size)
	lines := make([]OrderLine, 0, count)
	v.each(0, v.n, func(e *logEntry, orderID, sku []byte) {
		lines = append(lines, OrderLine{Qty: int(e.qty)})
		b.Write(orderID)
		b.Write(sku)
	})
	keys, i := b.String(), 0
	v.each(0, v.n, func(_ *logEntry, orderID, sku []byte) {
		id, s := len(orderID), len(sku)
		lines[i].OrderID, lines[i].SKU = keys[:id], keys[id:id+s]
		keys, i = keys[id+s:], i+1
	})
	return lines
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

// extends reports whether v sees everything since sees, in the same entries, and what else it
// sees lies past since's end: the same log, and the same gaps below since's end (since sees
// position since.n-1, so a gap of v that reaches past it starts at since.n or later).
func (v lineView) extends(since lineView) bool {
	switch {
	case since.n == 0:
		return true
	case since.n > v.n || v.log != since.log:
		return false
	}
	mine, theirs := v.gaps.list(), since.gaps.list()
	if len(mine) < len(theirs) {
		return false
	}
	for i, s := range theirs {
		if mine[i] != s {
			return false
		}
	}
	return len(mine) == len(theirs) || mine[len(theirs)].from >= since.n
}
