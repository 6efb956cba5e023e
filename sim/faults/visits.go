package faults

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
)

// Visits is a crash plan chosen by count instead of by probability: for each point, the visits
// at which the process crashes, counted from 1 over every goroutine of the live process (visits
// of goroutines whose process already died do not count). At AfterCommit only commits that
// carried an event count, so "after-commit=3" is the third commit with an event. A plan by count
// fires whatever the machine's speed: the run keeps the faults on after the last order until
// every listed visit has come (see sim.Config.CrashAt).
type Visits map[Point][]int

// String lists the plan as ParseVisits reads it: "relay-sent=600/700", points in order.
func (c Visits) String() string {
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

// ParseVisits parses "point=n/n/...,point=n", e.g. "relay-sent=600/700,after-commit=5";
// "" and "none" are no crashes. Visits are counted from 1 and must be distinct.
func ParseVisits(s string) (Visits, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	c := Visits{}
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
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Validate reports the first visit that is not counted from 1 or is listed twice at its point.
func (c Visits) Validate() error {
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
func (c Visits) Any() bool {
	for _, ns := range c {
		if len(ns) > 0 {
			return true
		}
	}
	return false
}

// Counter is a Visits plan as a run consults it: it counts the visits of each point and says
// which of them crash. Visit must be called under the caller's own lock (the run's crash lock,
// so that only visits of the live process count, exactly); Spent is safe for concurrent use.
type Counter struct {
	at     map[Point]map[int]bool
	visits map[Point]int
	left   atomic.Int64 // listed visits still to come
}

// NewCounter returns the counter of plan v, with no visit counted yet.
func NewCounter(v Visits) *Counter {
	cc := &Counter{at: map[Point]map[int]bool{}, visits: map[Point]int{}}
	for p, ns := range v {
		cc.at[p] = map[int]bool{}
		for _, n := range ns {
			cc.at[p][n] = true
		}
		cc.left.Add(int64(len(ns)))
	}
	return cc
}

// Visit counts a visit of p and reports whether the process crashes there. A point the plan
// does not list is not counted.
func (c *Counter) Visit(p Point) bool {
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

// Spent reports whether every listed visit has come.
func (c *Counter) Spent() bool { return c.left.Load() == 0 }
