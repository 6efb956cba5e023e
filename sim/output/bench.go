package output

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/stockbus/stockbus/sim"
)

// WriteBench writes one line per report in the Go benchmark format, so that benchstat compares
// two runs, or two strategies of one run (benchstat -col /strategy). The iteration count is the
// number of measured orders and ns/op their mean latency.
func WriteBench(w io.Writer, reports []sim.Report, sweep *sim.Sweep) error {
	if len(reports) == 0 {
		return nil
	}
	ew := &errWriter{w: w}
	w = ew
	env := reports[0].Env
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/stockbus/stockbus/sim\n", env.GOOS, env.GOARCH)
	if cpu := cpuName(); cpu != "" {
		fmt.Fprintf(w, "cpu: %s\n", cpu)
	}
	if env.Commit != "" {
		fmt.Fprintf(w, "commit: %s\n", env.Commit)
	}
	fmt.Fprintf(w, "seed: %d\n", reports[0].Config.Seed)
	for _, r := range reports {
		name := benchName(r, sweep)
		fmt.Fprintf(w, "%s-%d\t%d\t%.0f ns/op\t%.1f orders/s\t%d p50-ns\t%d p99-ns\t%d p999-ns\t%.0f dispatch-ns/op\t%.4f dispatch-share\t%d lag-p99-ns\t%.0f B/order\n",
			name, r.Env.GOMAXPROCS, max(r.Counts.Measured, 1), float64(r.Latency.Mean), r.Throughput.Achieved,
			r.Latency.P50, r.Latency.P99, r.Latency.P999, float64(r.Dispatch.Mean), r.Dispatch.Share,
			r.DeliveryLag.P99, r.Memory.PerOrder)
	}
	return ew.err
}

// errWriter keeps the first error of w and writes nothing after it.
type errWriter struct {
	w   io.Writer
	err error
}

// Write writes p unless an earlier write failed, and keeps the first error.
func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func benchName(r sim.Report, sweep *sim.Sweep) string {
	c := r.Config
	parts := []string{"BenchmarkSimulate", "strategy=" + c.Strategy, "model=" + c.Model,
		"workers=" + strconv.Itoa(c.Workers), "mailer=" + benchValue(c.Mailer.Mean.String())}
	if sweep != nil && sweep.Param != "workers" && sweep.Param != "mailer-latency" {
		v, _ := sweep.Value(c)
		parts = append(parts, sweep.Param+"="+benchValue(v))
	}
	return strings.Join(parts, "/")
}

// benchValue keeps a benchmark name free of spaces and of the "-N" suffix benchstat reads as GOMAXPROCS.
func benchValue(s string) string {
	return strings.NewReplacer(" ", "", "-", "_").Replace(s)
}

func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
