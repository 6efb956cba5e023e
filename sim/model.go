package sim

import (
	"fmt"
	"math"
	"runtime"
	"time"
)

// Model checks a closed sync run against N / (t0 + r·L): N workers; t0 a request's cost without
// the mailer, measured apart by a calibration run (one worker, the same workload and store, no
// mailer latency, no faults); r the fraction of the judged run's requests that sent a mail; L the
// mailer's achieved latency in the judged run. A slowdown the calibration did not have (a slower
// commit, idle workers, contention among N workers) shows as a ratio below 1.
type Model struct {
	Workers     int           `json:"workers"`
	T0          time.Duration `json:"t0_ns"`
	Calibration Calibration   `json:"calibration"`
	R           float64       `json:"r"`
	L           time.Duration `json:"l_ns"`
	Predicted   float64       `json:"predicted_per_s"`
	Measured    float64       `json:"measured_per_s"`
	Ratio       float64       `json:"ratio"` // measured / predicted
	Within10    bool          `json:"within_10pct"`
	Busy        float64       `json:"busy"` // fraction of the window the workers spent inside requests
	Note        string        `json:"note"`
}

// NewModel computes the model check. It has no wall-clock inputs of its own, so it is tested on
// made-up figures. busy (0..1) is only used to explain a miss.
func NewModel(workers int, t0 time.Duration, r float64, l time.Duration, measured, busy float64) Model {
	m := Model{Workers: workers, T0: t0, R: r, L: l, Measured: measured, Busy: busy}
	if per := t0.Seconds() + r*l.Seconds(); per > 0 {
		m.Predicted = float64(workers) / per
	}
	if m.Predicted > 0 {
		m.Ratio = measured / m.Predicted
	}
	m.Within10 = math.Abs(m.Ratio-1) <= 0.10
	switch {
	case m.Predicted == 0:
		m.Note = "nothing measured"
	case m.Within10:
		m.Note = "within 10%"
	case busy > 0 && busy < 0.9:
		m.Note = fmt.Sprintf("workers were inside requests only %.0f%% of the window: time between orders (order generation, bookkeeping, scheduling %d workers on GOMAXPROCS=%d) is outside the model",
			100*busy, workers, runtime.GOMAXPROCS(0))
	case m.Ratio < 1:
		m.Note = "dispatch cost more than r·L: the bus, the recording and timer overshoot beyond the mailer's own latency"
	default:
		m.Note = "requests were faster than t0 + r·L predicts"
	}
	return m
}

// Little cross-checks the run with Little's law: the mean number of orders in the system equals
// throughput × mean time in the system. InFlight is sampled independently every 10 ms during the
// window. In the open model an order enters the system when the scheduler lets it go, so the
// generator's lag is taken off the mean latency.
type Little struct {
	Throughput  float64       `json:"throughput_per_s"`
	MeanLatency time.Duration `json:"mean_latency_ns"` // mean time in the system
	Product     float64       `json:"product"`         // throughput × mean latency
	InFlight    float64       `json:"in_flight"`       // sampled mean of orders in the system
	Workers     int           `json:"workers"`         // closed model: the population, an upper bound
	Ratio       float64       `json:"ratio"`           // product / in_flight
}

// NewLittle computes the Little's law cross-check.
func NewLittle(throughput float64, mean time.Duration, inFlight float64, workers int) Little {
	l := Little{Throughput: throughput, MeanLatency: mean, InFlight: inFlight, Workers: workers,
		Product: throughput * mean.Seconds()}
	if inFlight > 0 {
		l.Ratio = l.Product / inFlight
	}
	return l
}

func littleCheck(rep Report, cfg Config, inFlight float64) Little {
	workers := 0
	if cfg.Model == Closed {
		workers = cfg.Workers
	}
	return NewLittle(rep.Throughput.Achieved, rep.Latency.Mean-rep.GeneratorLag.Mean, inFlight, workers)
}
