package faults

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
)

// Rates is the probability of a crash at each visit of each point.
type Rates struct {
	BeforeCommit float64 `json:"before_commit"`
	AfterCommit  float64 `json:"after_commit"`
	AfterHandler float64 `json:"after_handler"`
	AfterDeliver float64 `json:"after_deliver"`
	RelaySent    float64 `json:"relay_sent"`
}

func (c *Rates) field(p Point) *float64 {
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
func (c Rates) At(p Point) float64 {
	if f := c.field(p); f != nil {
		return *f
	}
	return 0
}

// Any reports whether some point may crash.
func (c Rates) Any() bool {
	for _, p := range Points() {
		if c.At(p) > 0 {
			return true
		}
	}
	return false
}

// String lists the points that may crash, as ParseRates reads them: "after-commit=0.05".
func (c Rates) String() string {
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

// ParseRates parses "point=p,point=p", e.g. "after-commit=0.05,relay-sent=0.1"; "" and
// "none" are no crashes.
func ParseRates(s string) (Rates, error) {
	var c Rates
	if s == "" || s == "none" {
		return c, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Rates{}, fmt.Errorf("want point=probability, got %q", part)
		}
		p, err := ParsePoint(name)
		if err != nil {
			return Rates{}, err
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || !(v >= 0 && v <= 1) {
			return Rates{}, fmt.Errorf("%s: want a probability between 0 and 1, got %q", name, value)
		}
		*c.field(p) = v
	}
	return c, nil
}

// Seeded is the plan drawn from rates: the n-th visit of an actor to a point crashes when a hash
// of the seed, the actor, the point and n falls under the point's rate. The decisions depend on
// each actor's own sequence of visits only, so a one-worker run replays. It is safe for
// concurrent use.
type Seeded struct {
	seed  uint64
	rates Rates

	mu     sync.Mutex
	visits map[visit]uint64
}

var _ Plan = (*Seeded)(nil)

type visit struct {
	actor string
	p     Point
}

// NewSeeded returns the plan of rates under seed.
func NewSeeded(seed int64, rates Rates) *Seeded {
	return &Seeded{seed: uint64(seed), rates: rates, visits: map[visit]uint64{}}
}

// Crash counts the actor's visit to p and reports whether the process crashes there.
func (s *Seeded) Crash(p Point, actor string) bool {
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
