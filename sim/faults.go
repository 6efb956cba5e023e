package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Point is a place in the life of an order or an event where the simulated process can crash.
// The run asks the fault plan at each one; without crash faults nothing happens there.
type Point int

// Crash points, in the order an event meets them.
const (
	// BeforeCommit: the unit of work did its work, nothing is stored yet (on the worker's
	// goroutine). A crash here stores nothing.
	BeforeCommit Point = iota + 1
	// AfterCommit: the product and (outbox) the event rows are stored, nothing is dispatched yet.
	// A crash here leaves committed events that nobody will hand over.
	AfterCommit
	// AfterHandler: one handler of an event returned (bus middleware, on whichever goroutine runs
	// the bus): publishing stops half way, after k handlers.
	AfterHandler
	// AfterDeliver: an async handler goroutine finished one event.
	AfterDeliver
	// RelaySent: an outbox relay sender mailed a row and has not marked it done.
	RelaySent
)

var pointNames = [...]string{"", "before-commit", "after-commit", "after-handler", "after-deliver", "relay-sent"}

// Points lists every crash point, in order.
func Points() []Point {
	return []Point{BeforeCommit, AfterCommit, AfterHandler, AfterDeliver, RelaySent}
}

func (p Point) String() string {
	if p > 0 && int(p) < len(pointNames) {
		return pointNames[p]
	}
	return "point(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText makes points readable in JSON.
func (p Point) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ParsePoint parses a point's name, e.g. "after-commit".
func ParsePoint(s string) (Point, error) {
	for _, p := range Points() {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown crash point %q (want one of %s)", s, strings.Join(pointNames[1:], ", "))
}

// Faults decides where the simulated process crashes. Crash is called at every Point with the
// name of the goroutine there ("w0" worker, "h1" async handler, "r2" relay sender; "h1@3" in the
// process's fourth life) and must be safe for concurrent use; seed it so runs replay. Without a
// Faults in Config, the run uses a seeded plan drawn from Config.Crash.
//
// A crash kills the whole process, not one goroutine: see the package documentation.
type Faults interface {
	Crash(p Point, actor string) bool
}

// CrashRates is the probability of a crash at each visit of each point.
type CrashRates struct {
	BeforeCommit float64 `json:"before_commit"`
	AfterCommit  float64 `json:"after_commit"`
	AfterHandler float64 `json:"after_handler"`
	AfterDeliver float64 `json:"after_deliver"`
	RelaySent    float64 `json:"relay_sent"`
}

func (c *CrashRates) field(p Point) *float64 {
	switch p {
	case BeforeCommit:
		return &c.BeforeCommit
	case AfterCommit:
		return &c.AfterCommit
	case AfterHandler:
		return &c.AfterHandler
	case AfterDeliver:
		return &c.AfterDeliver
	case RelaySent:
		return &c.RelaySent
	}
	return nil
}

// At returns the rate at p.
func (c CrashRates) At(p Point) float64 {
	if f := c.field(p); f != nil {
		return *f
	}
	return 0
}

// Any reports whether some point may crash.
func (c CrashRates) Any() bool {
	for _, p := range Points() {
		if c.At(p) > 0 {
			return true
		}
	}
	return false
}

// String lists the points that may crash, as ParseCrashRates reads them: "after-commit=0.05".
func (c CrashRates) String() string {
	var parts []string
	for _, p := range Points() {
		if v := c.At(p); v != 0 {
			parts = append(parts, p.String()+"="+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParseCrashRates parses "point=p,point=p", e.g. "after-commit=0.05,relay-sent=0.1"; "" and
// "none" are no crashes.
func ParseCrashRates(s string) (CrashRates, error) {
	var c CrashRates
	if s == "" || s == "none" {
		return c, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return CrashRates{}, fmt.Errorf("want point=probability, got %q", part)
		}
		p, err := ParsePoint(name)
		if err != nil {
			return CrashRates{}, err
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || !(v >= 0 && v <= 1) {
			return CrashRates{}, fmt.Errorf("%s: want a probability between 0 and 1, got %q", name, value)
		}
		*c.field(p) = v
	}
	return c, nil
}

// seededCrashes is the fault plan drawn from Config.Crash: the n-th visit of an actor to a point
// crashes when a hash of the seed, the actor, the point and n falls under the point's rate. The
// decisions depend on each actor's own sequence of visits only, so a one-worker run replays.
type seededCrashes struct {
	seed  uint64
	rates CrashRates

	mu     sync.Mutex
	visits map[visit]uint64
}

type visit struct {
	actor string
	p     Point
}

func newSeededCrashes(seed int64, rates CrashRates) *seededCrashes {
	return &seededCrashes{seed: uint64(seed), rates: rates, visits: map[visit]uint64{}}
}

func (s *seededCrashes) Crash(p Point, actor string) bool {
	rate := s.rates.At(p)
	if rate <= 0 {
		return false
	}
	s.mu.Lock()
	k := visit{actor, p}
	s.visits[k]++
	n := s.visits[k]
	s.mu.Unlock()
	h := fnv.New64a()
	h.Write([]byte(actor))
	x := mix64(mix64(s.seed^h.Sum64()) ^ uint64(p)<<56 ^ n)
	return float64(x>>11)/(1<<53) < rate
}

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// errCrashed is what a handler returns when the process died inside it.
var errCrashed = errors.New("simulated crash")

// errDied is what a goroutine of a process that already died gets back when it tries to go on.
var errDied = errors.New("the process died")

// crashed is the panic value that unwinds a worker's request when its process died under it.
type crashed struct{ at Point }

// CrashVisits is a crash plan chosen by count instead of by probability: for each point, the
// visits at which the process crashes, counted from 1 over every goroutine of the live process
// (visits of goroutines whose process already died do not count). At AfterCommit only commits
// that carried an event count, so "after-commit=3" is the third commit with an event. A plan by
// count fires whatever the machine's speed: the run keeps the faults on after the last order
// until every listed visit has come (see Config.CrashAt).
type CrashVisits map[Point][]int

// String lists the plan as ParseCrashVisits reads it: "relay-sent=600/700", points in order.
func (c CrashVisits) String() string {
	var parts []string
	for _, p := range Points() {
		if ns := c[p]; len(ns) > 0 {
			s := make([]string, len(ns))
			for i, n := range ns {
				s[i] = strconv.Itoa(n)
			}
			parts = append(parts, p.String()+"="+strings.Join(s, "/"))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParseCrashVisits parses "point=n/n/...,point=n", e.g. "relay-sent=600/700,after-commit=5";
// "" and "none" are no crashes. Visits are counted from 1 and must be distinct.
func ParseCrashVisits(s string) (CrashVisits, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	c := CrashVisits{}
	for part := range strings.SplitSeq(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("want point=n/n/..., got %q", part)
		}
		p, err := ParsePoint(name)
		if err != nil {
			return nil, err
		}
		if _, dup := c[p]; dup {
			return nil, fmt.Errorf("%s given twice", name)
		}
		for v := range strings.SplitSeq(value, "/") {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%s: want visits counted from 1, got %q", name, v)
			}
			c[p] = append(c[p], n)
		}
		if err := c.validate(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c CrashVisits) validate() error {
	for p, ns := range c {
		seen := map[int]bool{}
		for _, n := range ns {
			switch {
			case n < 1:
				return fmt.Errorf("%s: want visits counted from 1, got %d", p, n)
			case seen[n]:
				return fmt.Errorf("%s: visit %d listed twice", p, n)
			}
			seen[n] = true
		}
	}
	return nil
}

// Any reports whether the plan crashes anywhere.
func (c CrashVisits) Any() bool {
	for _, ns := range c {
		if len(ns) > 0 {
			return true
		}
	}
	return false
}

// countedCrashes is a CrashVisits plan as the run consults it, under the crash lock (so that
// only visits of the live process count, exactly).
type countedCrashes struct {
	at     map[Point]map[int]bool
	visits map[Point]int
	left   atomic.Int64 // listed visits still to come
}

func newCountedCrashes(c CrashVisits) *countedCrashes {
	cc := &countedCrashes{at: map[Point]map[int]bool{}, visits: map[Point]int{}}
	for p, ns := range c {
		cc.at[p] = map[int]bool{}
		for _, n := range ns {
			cc.at[p][n] = true
		}
		cc.left.Add(int64(len(ns)))
	}
	return cc
}

// visit counts a visit of p by the live process and reports whether it crashes there. The
// caller holds the crash lock exclusively.
func (c *countedCrashes) visit(p Point) bool {
	if len(c.at[p]) == 0 {
		return false
	}
	c.visits[p]++
	if !c.at[p][c.visits[p]] {
		return false
	}
	c.left.Add(-1)
	return true
}

// spent reports whether every listed visit has come.
func (c *countedCrashes) spent() bool { return c.left.Load() == 0 }
