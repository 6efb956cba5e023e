package sim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Sweep runs the same configuration at several values of one parameter.
type Sweep struct {
	Param  string   `json:"param"`  // a flag name, e.g. "mailer-latency"
	Values []string `json:"values"` // as given, e.g. ["0", "1ms", "5ms"]
}

type sweepParam struct {
	set func(c *Config, v string) error
	get func(c Config) string
}

func intParam(field func(*Config) *int) sweepParam {
	return sweepParam{
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not a whole number (e.g. 8)", v)
			}
			*field(c) = n
			return nil
		},
		get: func(c Config) string { return strconv.Itoa(*field(&c)) },
	}
}

func floatParam(field func(*Config) *float64) sweepParam {
	return sweepParam{
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number (e.g. 0.5)", v)
			}
			*field(c) = f
			return nil
		},
		get: func(c Config) string { return strconv.FormatFloat(*field(&c), 'g', -1, 64) },
	}
}

var sweepParams = map[string]sweepParam{
	"mailer-latency": {
		set: func(c *Config, v string) error {
			l, err := ParseLatency(v)
			c.Mailer = l
			return err
		},
		get: func(c Config) string {
			if c.Mailer.Dist == "uniform" {
				return c.Mailer.Min.String() + ".." + c.Mailer.Max.String()
			}
			return c.Mailer.Mean.String()
		},
	},
	"workers":  intParam(func(c *Config) *int { return &c.Workers }),
	"handlers": intParam(func(c *Config) *int { return &c.Handlers }),
	"relays":   intParam(func(c *Config) *int { return &c.Relays }),
	"queue":    intParam(func(c *Config) *int { return &c.Queue }),
	"orders":   intParam(func(c *Config) *int { return &c.Orders }),
	"skus":     intParam(func(c *Config) *int { return &c.SKUs }),
	"rate":     floatParam(func(c *Config) *float64 { return &c.Rate }),
	"demand":   floatParam(func(c *Config) *float64 { return &c.Demand }),
	"zipf-s":   floatParam(func(c *Config) *float64 { return &c.ZipfS }),

	"mail-errors":         floatParam(func(c *Config) *float64 { return &c.MailErrors }),
	"conflict-rate":       floatParam(func(c *Config) *float64 { return &c.ConflictRate }),
	"client-retry":        floatParam(func(c *Config) *float64 { return &c.ClientRetry }),
	"handler-attempts":    intParam(func(c *Config) *int { return &c.HandlerAttempts }),
	"crash-before-commit": floatParam(func(c *Config) *float64 { return &c.Crash.BeforeCommit }),
	"crash-after-commit":  floatParam(func(c *Config) *float64 { return &c.Crash.AfterCommit }),
	"crash-after-handler": floatParam(func(c *Config) *float64 { return &c.Crash.AfterHandler }),
	"crash-after-deliver": floatParam(func(c *Config) *float64 { return &c.Crash.AfterDeliver }),
	"crash-relay-sent":    floatParam(func(c *Config) *float64 { return &c.Crash.RelaySent }),
}

// SweepParams lists the parameters a sweep can vary, sorted.
func SweepParams() []string {
	var names []string
	for n := range sweepParams {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ParseSweep parses "param=v1,v2,...", for example "mailer-latency=0,1ms,5ms,20ms" or
// "workers=1,2,4,8". Errors are *ConfigError naming the sweep flag.
func ParseSweep(s string) (Sweep, error) {
	param, list, ok := strings.Cut(s, "=")
	if _, known := sweepParams[param]; !ok || !known {
		return Sweep{}, bad("sweep", "want param=v1,v2,... with param one of %s, got %q", strings.Join(SweepParams(), ", "), s)
	}
	sw := Sweep{Param: param}
	for v := range strings.SplitSeq(list, ",") {
		if v = strings.TrimSpace(v); v != "" {
			sw.Values = append(sw.Values, v)
		}
	}
	if len(sw.Values) == 0 {
		return Sweep{}, bad("sweep", "no values for %s (want %s=v1,v2,...)", param, param)
	}
	for _, v := range sw.Values {
		var c Config
		if err := sweepParams[param].set(&c, v); err != nil {
			return Sweep{}, bad("sweep", "%s=%s: %v", param, v, err)
		}
	}
	return sw, nil
}

// Apply returns cfg with the swept parameter set to value, validated.
func (s Sweep) Apply(cfg Config, value string) (Config, error) {
	p, ok := sweepParams[s.Param]
	if !ok {
		return cfg, bad("sweep", "unknown parameter %q", s.Param)
	}
	if err := p.set(&cfg, value); err != nil {
		return cfg, bad("sweep", "%s=%s: %v", s.Param, value, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, bad("sweep", "%s=%s: %v", s.Param, value, err)
	}
	return cfg, nil
}

// Value returns the swept parameter's value in cfg.
func (s Sweep) Value(cfg Config) (string, bool) {
	p, ok := sweepParams[s.Param]
	if !ok {
		return "", false
	}
	return p.get(cfg), true
}

// Plan returns the configurations of a sweep, one per value and strategy, in that order. With
// no strategies it sweeps cfg.Strategy alone.
func (s Sweep) Plan(cfg Config, strategies []string) ([]Config, error) {
	if len(strategies) == 0 {
		strategies = []string{cfg.Strategy}
	}
	var out []Config
	for _, v := range s.Values {
		for _, st := range strategies {
			c := cfg
			c.Strategy = st
			c, err := s.Apply(c, v)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// RunAll runs the configurations one after the other and returns the reports of those that ran.
// It stops early, returning what ran, when ctx ends; the last report is then marked Interrupted.
func RunAll(ctx context.Context, cfgs []Config) ([]Report, error) {
	var reports []Report
	for _, c := range cfgs {
		if ctx.Err() != nil {
			break
		}
		r, err := Run(ctx, c)
		if err != nil {
			return reports, err
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// Same reports whether got, a value read back from a Config (Value), is the value given on the
// command line (as in "-sweep workers=1,02": 2 is 02).
func (s Sweep) Same(got, given string) bool {
	var c Config
	if err := sweepParams[s.Param].set(&c, given); err != nil {
		return got == given
	}
	return sweepParams[s.Param].get(c) == got
}

func round3(v float64) float64 {
	f, _ := strconv.ParseFloat(fmt.Sprintf("%.3g", v), 64)
	return f
}
