package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stockbus/stockbus/fakes"
)

// Range is an inclusive range of quantities.
type Range struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

func (r Range) String() string { return fmt.Sprintf("%d..%d", r.Min, r.Max) }

func (r Range) mean() float64 { return float64(r.Min+r.Max) / 2 }

// ParseRange parses "lo..hi" or a single number.
func ParseRange(s string) (Range, error) {
	lo, hi, found := strings.Cut(s, "..")
	if !found {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil {
		return Range{}, fmt.Errorf("want lo..hi or a number, got %q", s)
	}
	return Range{a, b}, nil
}

// Latency is the distribution of the fake mailer's send time.
type Latency struct {
	// Dist is "fixed" (Mean), "uniform" (Min..Max) or "exp" (exponential with Mean).
	Dist string        `json:"dist"`
	Mean time.Duration `json:"mean_ns"`
	Min  time.Duration `json:"min_ns,omitempty"`
	Max  time.Duration `json:"max_ns,omitempty"`
}

// FixedLatency is a mailer that always takes d.
func FixedLatency(d time.Duration) Latency { return Latency{Dist: "fixed", Mean: d} }

// ParseLatency parses "5ms" or "fixed:5ms", "uniform:1ms..9ms" and "exp:5ms" (the mean).
func ParseLatency(s string) (Latency, error) {
	dist, arg, found := strings.Cut(s, ":")
	if !found {
		dist, arg = "fixed", s
	}
	switch dist {
	case "fixed", "exp":
		d, err := time.ParseDuration(arg)
		if arg == "0" {
			d, err = 0, nil
		}
		if err != nil {
			return Latency{}, fmt.Errorf("bad duration %q", arg)
		}
		return Latency{Dist: dist, Mean: d}, nil
	case "uniform":
		lo, hi, ok := strings.Cut(arg, "..")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if !ok || err1 != nil || err2 != nil {
			return Latency{}, fmt.Errorf("want uniform:lo..hi, got %q", s)
		}
		return Latency{Dist: "uniform", Min: a, Max: b, Mean: (a + b) / 2}, nil
	}
	return Latency{}, fmt.Errorf("unknown distribution %q (want fixed, uniform or exp)", dist)
}

func (l Latency) String() string {
	switch l.Dist {
	case "uniform":
		return fmt.Sprintf("uniform %v..%v", l.Min, l.Max)
	case "exp":
		return fmt.Sprintf("exponential, mean %v", l.Mean)
	}
	return fmt.Sprintf("fixed %v", l.Mean)
}

// Flag renders the latency as ParseLatency reads it.
func (l Latency) Flag() string {
	switch l.Dist {
	case "uniform":
		return "uniform:" + l.Min.String() + ".." + l.Max.String()
	case "exp":
		return "exp:" + l.Mean.String()
	}
	return l.Mean.String()
}

func (l Latency) option() fakes.MailerOption {
	switch l.Dist {
	case "uniform":
		return fakes.WithLatency(fakes.Uniform(l.Min, l.Max))
	case "exp":
		return fakes.WithLatency(fakes.Exponential(l.Mean))
	}
	return fakes.WithLatency(fakes.Fixed(l.Mean))
}
