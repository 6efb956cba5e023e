package sim

import (
	"context"
	"fmt"
	"time"
)

// Calibration is what the model check's calibration run measured, apart from the run it judges:
// one worker, the same workload and store, no mailer latency and no faults.
type Calibration struct {
	Orders int64         `json:"orders"` // measured orders of the calibration run
	T0     time.Duration `json:"t0_ns"`  // their mean latency: a request's cost without the mailer
}

// calibrationOrders is the most orders a calibration run sends.
const calibrationOrders = 1000

// calibrationConfig is cfg's calibration run: the same workload (so the same store contents), one
// worker, a mailer without latency, no faults, no delay, every order recorded.
func calibrationConfig(cfg Config) Config {
	c := cfg
	c.Workers, c.Mailer, c.Record = 1, FixedLatency(0), true
	c.Orders, c.Duration, c.Warmup = min(cfg.Orders, calibrationOrders), 0, 0
	c.WarmupOrders = min(cfg.WarmupOrders, c.Orders/10)
	c.Crash, c.CrashAt, c.Faults, c.HoldFaults, c.BrokerDrops = CrashRates{}, nil, nil, 0, nil
	c.ConflictRate, c.MailErrors, c.MailTimeout, c.ClientRetry, c.BadInput, c.QuantityChanges = 0, 0, 0, 0, 0, 0
	c.Rendezvous, c.Require, c.Progress, c.CommitDelay = 0, Promise{}, nil, 0
	// t0 is a request's cost without the mailer, so not even a real mailer's conversation.
	c.MailerName, c.OpenMailer, c.NoMailFaults = "", nil, ""
	return c
}

// calibrate runs cfg's calibration run and returns what it measured.
func calibrate(ctx context.Context, cfg Config) (Calibration, error) {
	rep, err := runOnce(ctx, calibrationConfig(cfg), nil)
	if err != nil {
		return Calibration{}, fmt.Errorf("calibration run: %w", err)
	}
	n, t0 := ModelT0(rep.History)
	return Calibration{Orders: n, T0: t0}, nil
}

// ModelT0 returns the number of measured orders of a recorded history and their mean latency:
// the model's t0 when the history is a calibration run's (no mailer latency, so the mean is a
// request's cost outside the mailer). Orders of the warm-up do not count.
func ModelT0(h *History) (orders int64, t0 time.Duration) {
	var sum time.Duration
	for _, o := range h.Orders {
		if o.Measured {
			orders++
			sum += o.Latency
		}
	}
	if orders == 0 {
		return 0, 0
	}
	return orders, sum / time.Duration(orders)
}
