package domain

// White-box tests of the append-only line log behind Batch. The black-box tests check what a
// batch holds; these check what the public API cannot see: that views made from one another in
// any order (in place, past a gap, compacted) each see exactly their own changes, that keys whose
// hashes collide are kept apart, and that a view's gaps stay few and well formed. The log functions take the hash
// of each line from their caller, so these tests give them hashes built to collide.

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hashes are the hash functions the log is tested with: the real one, and ones that make keys
// collide in a few values or in all of them.
var hashes = []struct {
	name string
	hash func(orderID, sku string) uint64
}{
	{name: "keyHash", hash: keyHash},
	{name: "3 values", hash: func(o, s string) uint64 { return keyHash(o, s) % 3 }},
	// Distinct hashes with the same top bits: one home group and one stored top for all, so
	// probes run across groups and slots must be told apart by the entry's full hash.
	{name: "low bits only", hash: func(o, s string) uint64 { return keyHash(o, s) & 0xffff }},
	{name: "constant", hash: func(string, string) uint64 { return 0xdead_beef }},
}

type modelKey struct{ orderID, sku string }

// logVersion is a view together with the model of what it holds, and the order of its lines.
type logVersion struct {
	view  lineView
	model map[modelKey]OrderLine
	order []modelKey // oldest allocation first
}

func (v logVersion) clone() logVersion {
	return logVersion{view: v.view, model: maps.Clone(v.model), order: slices.Clone(v.order)}
}

func (v *logVersion) allocate(hash func(string, string) uint64, l OrderLine) {
	k := modelKey{l.OrderID, l.SKU}
	if _, held := v.model[k]; held {
		return
	}
	v.view = v.view.with(l, hash(l.OrderID, l.SKU), false)
	v.model[k] = l
	v.order = append(v.order, k)
}

func (v *logVersion) deallocate(hash func(string, string) uint64, k modelKey) {
	l, held := v.model[k]
	if !held {
		return
	}
	v.view = v.view.with(l, hash(l.OrderID, l.SKU), true)
	delete(v.model, k)
	v.order = slices.DeleteFunc(v.order, func(o modelKey) bool { return o == k })
}

// check compares the view with its model: a lookup of every key of the universe, and its lines.
func (v logVersion) check(t *testing.T, name string, hash func(string, string) uint64, universe []modelKey) {
	t.Helper()
	for _, k := range universe {
		got, ok := v.view.held(hash(k.orderID, k.sku), k.orderID, k.sku)
		want, held := v.model[k]
		require.Equal(t, held, ok, "%s: held(%v)", name, k)
		require.Equal(t, want, got, "%s: held(%v)", name, k)
	}
	want := make([]OrderLine, len(v.order))
	for i, k := range v.order {
		want[i] = v.model[k]
	}
	require.Equal(t, want, v.view.lines(len(v.model)), "%s: lines", name)
	checkGaps(t, name, v.view)
}

// checkGaps checks the shape that lookups and extends rely on: at most maxGaps spans, each
// non-empty, in order, apart, and followed by a position the view sees, inside the log.
func checkGaps(t *testing.T, name string, v lineView) {
	t.Helper()
	spans := v.gaps.list()
	require.LessOrEqual(t, len(spans), maxGaps, "%s: gaps", name)
	if v.n > 0 {
		require.True(t, v.sees(v.n-1), "%s: the view sees its last position", name)
		require.LessOrEqual(t, v.n, v.log.n, "%s: the view ends inside its log", name)
	}
	for i, s := range spans {
		require.Less(t, s.from, s.to, "%s: gap %d is empty: %v", name, i, spans)
		require.True(t, v.sees(s.to), "%s: gap %d is followed by a position the view sees: %v", name, i, spans)
		require.False(t, v.sees(s.from), "%s: the view sees the start of gap %d: %v", name, i, spans)
		require.False(t, v.sees(s.to-1), "%s: the view sees the end of gap %d: %v", name, i, spans)
		if i > 0 {
			require.Less(t, spans[i-1].to, s.from, "%s: gaps %d and %d are in order and apart: %v", name, i-1, i, spans)
		}
	}
}

// TestLogAgainstModel allocates and deallocates random lines in views made from one another
// (each change is made on a random earlier version, as units of work that loaded the same
// product do), with every hash function, and checks every version against a map after every
// change: no version ever sees another's change.
func TestLogAgainstModel(t *testing.T) {
	for _, h := range hashes {
		t.Run(h.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 7))
			var universe []modelKey
			for i := range 40 {
				universe = append(universe, modelKey{fmt.Sprintf("o%d", i/2), []string{"A", "B"}[i%2]})
			}
			// Keys that are the same bytes end to end, split in other places.
			universe = append(universe, modelKey{"ab", "c"}, modelKey{"a", "bc"}, modelKey{"abc", ""})
			versions := []logVersion{{model: map[modelKey]OrderLine{}}}
			for step := range 400 {
				v := versions[r.IntN(len(versions))].clone()
				k := universe[r.IntN(len(universe))]
				if r.IntN(3) == 0 {
					v.deallocate(h.hash, k)
				} else {
					v.allocate(h.hash, OrderLine{OrderID: k.orderID, SKU: k.sku, Qty: 1 + r.IntN(5)})
				}
				versions = append(versions, v)
				if step%20 == 0 || step > 380 {
					for i, o := range versions {
						o.check(t, fmt.Sprintf("step %d, version %d", step, i), h.hash, universe)
					}
				}
			}
		})
	}
}

// TestLogAppendsInPlaceWhileItOwnsTheEnd shows the cheap path: a view that ends where its log
// ends appends to it, and a copy made before does not see the entry.
func TestLogAppendsInPlaceWhileItOwnsTheEnd(t *testing.T) {
	var v lineView
	v = v.with(OrderLine{"o1", "A", 1}, 1, false)
	before := v
	v = v.with(OrderLine{"o2", "A", 1}, 2, false)
	assert.Same(t, before.log, v.log, "the second entry went into the same log")
	_, held := before.held(2, "o2", "A")
	assert.False(t, held, "the copy made before sees the entry")

	assert.Nil(t, v.gaps, "a view that owned the end has no gap")

	forked := before.with(OrderLine{"o3", "A", 1}, 3, false)
	assert.Same(t, before.log, forked.log, "a view that does not own the end appends to the same log")
	assert.Equal(t, []span{{from: 1, to: 2}}, forked.gaps.list(), "the other view's entry is a gap")
	assert.Equal(t, 3, forked.n)
	_, held = forked.held(2, "o2", "A")
	assert.False(t, held, "the fork sees the entry that was appended past its end")
	_, held = forked.held(1, "o1", "A")
	assert.True(t, held, "the fork sees the entry before its gap")
	_, held = v.held(3, "o3", "A")
	assert.False(t, held, "the view sees its fork's entry")
	again := forked.with(OrderLine{"o4", "A", 1}, 4, false)
	assert.Same(t, forked.gaps, again.gaps, "the fork owns the end now: no new gap")
}

// TestLogForksOfForksAreCompacted makes a view that loses the end again and again, as the
// winner of many conflicts does, and checks that it has a gap for each until maxGaps, then moves
// to a log of its own without gaps, still holding everything.
func TestLogForksOfForksAreCompacted(t *testing.T) {
	v := logVersion{model: map[modelKey]OrderLine{}}
	v.allocate(keyHash, OrderLine{OrderID: "first", SKU: "A", Qty: 1}) // so that there is a log to share
	universe := []modelKey{{"first", "A"}}
	compacted := false
	for i := range maxGaps + 5 {
		k := modelKey{fmt.Sprintf("o%d", i), "A"}
		universe = append(universe, k)
		rival := v.clone()
		rival.allocate(keyHash, OrderLine{OrderID: "other", SKU: "A", Qty: 1}) // owns the end now
		log, gaps := v.view.log, len(v.view.gaps.list())
		v.allocate(keyHash, OrderLine{OrderID: k.orderID, SKU: "A", Qty: 1}) // so this one has a gap
		switch {
		case gaps < maxGaps:
			require.Same(t, log, v.view.log, "after %d: a gap, in the same log", i)
			require.Len(t, v.view.gaps.list(), gaps+1, "after %d: one more gap", i)
		default:
			compacted = true
			require.NotSame(t, log, v.view.log, "after %d: compacted into a new log", i)
			require.Nil(t, v.view.gaps, "after %d: a compacted view has no gaps", i)
			require.Equal(t, len(v.order), v.view.n, "after %d: the new log holds only what the view saw", i)
		}
		v.check(t, fmt.Sprintf("after %d", i), keyHash, append(universe, modelKey{"other", "A"}))
		rival.check(t, fmt.Sprintf("rival %d", i), keyHash, append(universe, modelKey{"other", "A"}))
	}
	assert.True(t, compacted, "the gaps reached maxGaps")
}

// TestLogChanges checks ChangesSince's view-level work: what was added and removed since an
// earlier view, and no answer for views that do not extend it.
func TestLogChanges(t *testing.T) {
	v := logVersion{model: map[modelKey]OrderLine{}}
	v.allocate(keyHash, OrderLine{"kept", "A", 1})
	v.allocate(keyHash, OrderLine{"gone", "A", 2})
	since := v.clone()
	v.allocate(keyHash, OrderLine{"new", "A", 3})
	v.deallocate(keyHash, modelKey{"gone", "A"})
	v.allocate(keyHash, OrderLine{"brief", "A", 4})
	v.deallocate(keyHash, modelKey{"brief", "A"})
	v.deallocate(keyHash, modelKey{"kept", "A"})
	v.allocate(keyHash, OrderLine{"kept", "A", 1})

	added, removed, ok := v.view.changes(since.view)
	require.True(t, ok)
	assert.Equal(t, []OrderLine{{"new", "A", 3}}, added)
	assert.Equal(t, []OrderLine{{"gone", "A", 2}}, removed)

	_, _, ok = since.view.changes(v.view)
	assert.False(t, ok, "an older view does not extend a newer one")
	fork := since.clone()
	fork.allocate(keyHash, OrderLine{"elsewhere", "A", 1})
	_, _, ok = v.view.changes(fork.view)
	assert.False(t, ok, "a fork's view is not extended by the view it forked from")
	_, _, ok = fork.view.changes(v.view)
	assert.False(t, ok, "a fork does not extend the view whose entries are its gap")
	added, _, ok = fork.view.changes(since.view)
	require.True(t, ok, "a fork extends the view it forked from")
	assert.Equal(t, []OrderLine{{"elsewhere", "A", 1}}, added)

	// Two forks of one view, each with one entry, in one log: only the gaps tell them apart.
	a, b := since.clone(), since.clone()
	a.allocate(keyHash, OrderLine{"a", "A", 1})
	b.allocate(keyHash, OrderLine{"b", "A", 1})
	require.Same(t, a.view.log, b.view.log)
	_, _, ok = a.view.changes(b.view)
	assert.False(t, ok, "a fork does not extend its sibling")
	_, _, ok = b.view.changes(a.view)
	assert.False(t, ok, "nor the sibling the fork")
	c := a.clone()
	c.allocate(keyHash, OrderLine{"c", "A", 1}) // past b's entry: a gap of its own
	added, _, ok = c.view.changes(a.view)
	require.True(t, ok, "a view extends the one it was made from, past a gap")
	assert.Equal(t, []OrderLine{{"c", "A", 1}}, added)
	_, _, ok = c.view.changes(b.view)
	assert.False(t, ok, "nor does it extend the sibling whose entry is its gap")
	_, _, ok = b.view.changes(c.view)
	assert.False(t, ok, "a shorter view does not extend a longer one")
	d := b.clone()
	d.allocate(keyHash, OrderLine{"d", "A", 1}) // past c's entry: b's gap and a new one
	_, _, ok = d.view.changes(a.view)
	assert.False(t, ok, "a view whose first gap hides what since saw does not extend it")
	added, _, ok = d.view.changes(b.view)
	require.True(t, ok, "a view extends the one it was made from, past two gaps")
	assert.Equal(t, []OrderLine{{"d", "A", 1}}, added)
	_, _, ok = d.view.changes(c.view)
	assert.False(t, ok, "nor the sibling of its parent")
}

// TestExtends checks extends on views written out by hand, the shapes that the views TestLogChanges
// makes do not reach.
func TestExtends(t *testing.T) {
	var l, other lineLog
	for i := range 8 {
		add(&l, uint64(i), fmt.Sprint(i), "A", 1, false)
		add(&other, uint64(i), fmt.Sprint(i), "A", 1, false)
	}
	gaps := func(spans ...span) *gaps {
		var g *gaps
		for _, s := range spans {
			g = withGap(g, s)
		}
		return g
	}
	tests := []struct {
		name     string
		v, since lineView
		want     bool
	}{
		{name: "the empty view", v: lineView{log: &l, n: 3}, since: lineView{}, want: true},
		{name: "a longer view", v: lineView{log: &l, n: 5}, since: lineView{log: &l, n: 3}, want: true},
		{name: "the same view", v: lineView{log: &l, n: 5, gaps: gaps(span{1, 2})}, since: lineView{log: &l, n: 5, gaps: gaps(span{1, 2})}, want: true},
		{name: "a shorter view", v: lineView{log: &l, n: 3}, since: lineView{log: &l, n: 5}},
		{name: "another log", v: lineView{log: &l, n: 5}, since: lineView{log: &other, n: 3}},
		{name: "seeing since's gap", v: lineView{log: &l, n: 5}, since: lineView{log: &l, n: 4, gaps: gaps(span{1, 2})}},
		{name: "seeing one of since's two gaps", v: lineView{log: &l, n: 8, gaps: gaps(span{1, 2})}, since: lineView{log: &l, n: 6, gaps: gaps(span{1, 2}, span{3, 4})}},
		{name: "another gap", v: lineView{log: &l, n: 5, gaps: gaps(span{2, 3})}, since: lineView{log: &l, n: 4, gaps: gaps(span{1, 2})}},
		{name: "a gap hiding what since saw", v: lineView{log: &l, n: 6, gaps: gaps(span{2, 5})}, since: lineView{log: &l, n: 3}},
		{name: "a gap past since", v: lineView{log: &l, n: 6, gaps: gaps(span{1, 2}, span{3, 5})}, since: lineView{log: &l, n: 3, gaps: gaps(span{1, 2})}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.v.extends(tt.since), "extends(%+v, %+v)", tt.v, tt.since)
		})
	}
}

// TestLogCopiesChangeConcurrently changes copies of one view from many goroutines, as units of
// work that loaded the same product do; run with -race.
func TestLogCopiesChangeConcurrently(t *testing.T) {
	base := logVersion{model: map[modelKey]OrderLine{}}
	for i := range 20 {
		base.allocate(keyHash, OrderLine{fmt.Sprintf("base%d", i), "A", 1})
	}
	results := make([]logVersion, 8)
	var wg sync.WaitGroup
	for g := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := base.clone()
			for i := range 50 {
				v.allocate(keyHash, OrderLine{fmt.Sprintf("g%d-%d", g, i), "A", 1})
				if i%5 == 0 {
					v.deallocate(keyHash, modelKey{fmt.Sprintf("base%d", i%20), "A"})
				}
			}
			results[g] = v
		}()
	}
	wg.Wait()
	universe := slices.Collect(maps.Keys(base.model))
	for g, v := range results {
		for k := range v.model {
			universe = append(universe, k)
		}
		v.check(t, fmt.Sprintf("goroutine %d", g), keyHash, universe)
	}
	base.check(t, "base", keyHash, universe)
}

// TestHome pins where a hash's probe starts: its top bits, as many as the index has groups.
func TestHome(t *testing.T) {
	tests := []struct {
		name string
		top  uint64
		k    int
		want uint64
	}{
		{name: "one group", top: 0xffff_ffff, k: 0, want: 0},
		{name: "two groups, top bit set", top: 0x8000_0000, k: 1, want: 1},
		{name: "two groups, top bit clear", top: 0x7fff_ffff, k: 1, want: 0},
		{name: "sixteen groups", top: 0xa123_4567, k: 4, want: 0xa},
		{name: "all 32 bits", top: 0xdead_beef, k: 32, want: 0xdead_beef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, home(tt.top, tt.k), "home(%#x, %d)", tt.top, tt.k)
		})
	}
}

// TestIndexGrowsWhenHalfFull adds distinct hashes to one layer and checks after each that the
// index is the smallest one that keeps at least half its slots empty, and that another entry
// for a hash already indexed takes no slot.
func TestIndexGrowsWhenHalfFull(t *testing.T) {
	for _, spread := range []struct {
		name string
		hash func(i int) uint64
	}{
		{name: "spread hashes", hash: func(i int) uint64 { return keyHash(fmt.Sprint(i), "A") }},
		{name: "one home group", hash: func(i int) uint64 { return uint64(i) }},
	} {
		t.Run(spread.name, func(t *testing.T) {
			l := &lineLog{}
			for n := 1; n <= 200; n++ {
				add(l, spread.hash(n), fmt.Sprint(n), "A", 1, false)
				want := 1
				for 2*n > groupSlots*want {
					want *= 2
				}
				require.Equal(t, n, l.used, "slots used after %d hashes", n)
				require.Len(t, l.groups, want, "groups after %d hashes", n)
				require.Equal(t, want, 1<<l.groupBits, "groupBits after %d hashes", n)
			}
			add(l, spread.hash(7), "7", "A", 1, true)
			assert.Equal(t, 200, l.used, "a tombstone for an indexed hash takes no slot")
			for n := 1; n <= 200; n++ {
				i, ok := l.latest(spread.hash(n))
				want := n - 1
				if n == 7 {
					want = 200
				}
				require.True(t, ok, "latest(hash %d)", n)
				require.Equal(t, want, i, "latest(hash %d)", n)
			}
			_, ok := l.latest(spread.hash(201))
			assert.False(t, ok, "latest of a hash never added")
		})
	}
}

// TestArenaChunks pins how the key arena grows: each chunk twice the one before, from
// minKeyChunk up to maxKeyChunk, a key that fits the rest of a chunk exactly goes there, and a
// key longer than maxKeyChunk gets a chunk of its own length.
func TestArenaChunks(t *testing.T) {
	sizes := func(l *lineLog) []int {
		var s []int
		for _, c := range l.keys {
			s = append(s, len(c))
		}
		return s
	}
	l := &lineLog{}
	id := func(n int) string { return string(make([]byte, n)) + "x" }
	add(l, 1, id(minKeyChunk-2), "A", 1, false) // fills the first chunk exactly
	assert.Equal(t, []int{minKeyChunk}, sizes(l))
	add(l, 2, id(0), "B", 1, false)
	assert.Equal(t, []int{minKeyChunk, 2 * minKeyChunk}, sizes(l))
	for i := 0; len(l.keys) < 15; i++ {
		add(l, keyHash(fmt.Sprint(i), "C"), id(28), "C", 1, false)
	}
	want := []int{minKeyChunk}
	for len(want) < 15 {
		want = append(want, min(2*want[len(want)-1], maxKeyChunk))
	}
	assert.Equal(t, want, sizes(l), "chunks double up to maxKeyChunk")
	big := id(maxKeyChunk + 10)
	add(l, 9999, big, "D", 2, false)
	add(l, 10000, "after", "D", 3, false)
	got := sizes(l)
	assert.Equal(t, []int{len(big) + 1, maxKeyChunk}, got[len(got)-2:], "a long key's own chunk, then a capped one")

	v := lineView{log: l, n: l.n}
	line, ok := v.held(9999, big, "D")
	require.True(t, ok, "the long key is held")
	assert.Equal(t, 2, line.Qty)
	lines := v.lines(l.n)
	assert.Equal(t, OrderLine{OrderID: big, SKU: "D", Qty: 2}, lines[len(lines)-2])
	assert.Equal(t, OrderLine{OrderID: "after", SKU: "D", Qty: 3}, lines[len(lines)-1])
}

// TestEntryChunks pins where each layer position lives: chunk k holds firstChunk<<k entries.
func TestEntryChunks(t *testing.T) {
	tests := []struct{ i, chunk, at int }{
		{0, 0, 0}, {firstChunk - 1, 0, firstChunk - 1}, {firstChunk, 1, 0},
		{3*firstChunk - 1, 1, 2*firstChunk - 1}, {3 * firstChunk, 2, 0}, {1000, 6, 1000 + firstChunk - firstChunk<<6},
	}
	for _, tt := range tests {
		c, at := chunkOf(tt.i)
		assert.Equal(t, []int{tt.chunk, tt.at}, []int{c, at}, "chunkOf(%d)", tt.i)
	}
}

// TestKeyHash checks keyHash against FNV-1a of the standard library over the key with its
// separator, then splitmix64's finalizer: the index's spread depends on both, though no lookup
// would fail with a worse hash.
func TestKeyHash(t *testing.T) {
	mix := func(h uint64) uint64 {
		h ^= h >> 30
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 27
		h *= 0x94d049bb133111eb
		return h ^ h>>31
	}
	for _, k := range []modelKey{{"o1", "LAMP"}, {"", ""}, {"order-123456", "SMALL-TABLE"}, {"ab", "c"}, {"a", "bc"}, {"\xff", ""}} {
		f := fnv.New64a()
		f.Write([]byte(k.orderID + "\xff" + k.sku))
		assert.Equal(t, mix(f.Sum64()), keyHash(k.orderID, k.sku), "keyHash(%q, %q)", k.orderID, k.sku)
	}
	assert.NotEqual(t, keyHash("ab", "c"), keyHash("a", "bc"), "the separator keeps split keys apart")
}
