package dispatch

import (
	"fmt"
	"strings"
)

// Promise is what a strategy guarantees about the events it dispatches, per way out of the
// stack: the mail (OutOfStock, through the Mailer) and the publication (Allocated, through the
// Publisher). sim.Check holds the run to it.
type Promise struct {
	// Delivered: when no fault fired, every committed event not dropped on purpose is delivered
	// (mailed or published, by its kind).
	Delivered bool `json:"delivered"`
	// NoDuplicate (at-most-once, mail): whatever fails, no event is mailed twice.
	NoDuplicate bool `json:"no_duplicate"`
	// NoDuplicatePublish (at-most-once, publication): whatever fails, no event is published twice.
	NoDuplicatePublish bool `json:"no_duplicate_publish"`
	// NoLoss (at-least-once, both ways): whatever fails, every committed event is delivered once
	// the run has drained (the liveness phase).
	NoLoss bool `json:"no_loss"`
	// NoFailures: no order comes back failed (its retries exhausted). No strategy promises it;
	// -require no-failures holds a run to it.
	NoFailures bool `json:"no_failures,omitempty"`
	// Model: the throughput is within 10% of the model check's prediction (closed sync runs
	// only). No strategy promises it; -require model holds a run to it.
	Model bool `json:"model,omitempty"`
}

// Or is the promise that holds both p and o.
func (p Promise) Or(o Promise) Promise {
	return Promise{Delivered: p.Delivered || o.Delivered, NoDuplicate: p.NoDuplicate || o.NoDuplicate,
		NoDuplicatePublish: p.NoDuplicatePublish || o.NoDuplicatePublish, NoLoss: p.NoLoss || o.NoLoss,
		NoFailures: p.NoFailures || o.NoFailures, Model: p.Model || o.Model}
}

// String names the promise: "at-least-once", "at-most-once", "delivered when nothing fails",
// or several of them joined by " + ".
func (p Promise) String() string {
	var parts []string
	if p.NoLoss {
		parts = append(parts, "at-least-once")
	}
	switch {
	case p.NoDuplicate && p.NoDuplicatePublish:
		parts = append(parts, "at-most-once")
	case p.NoDuplicate:
		parts = append(parts, "at-most-once (mail)")
	case p.NoDuplicatePublish:
		parts = append(parts, "at-most-once (publication)")
	}
	if p.Delivered && !p.NoLoss {
		parts = append(parts, "delivered when nothing fails")
	}
	if p.NoFailures {
		parts = append(parts, "no failed orders")
	}
	if p.Model {
		parts = append(parts, "throughput within 10% of the model")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " + ")
}

// ParsePromise parses the names of promises, comma separated: "no-loss" (at-least-once),
// "no-duplicate" (at-most-once), "delivered"; "" or "none" is no promise.
func ParsePromise(s string) (Promise, error) {
	var p Promise
	if s == "" || s == "none" {
		return p, nil
	}
	for name := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(name) {
		case "no-loss", "at-least-once":
			p.NoLoss = true
		case "no-duplicate", "at-most-once":
			p.NoDuplicate, p.NoDuplicatePublish = true, true
		case "no-duplicate-mail":
			p.NoDuplicate = true
		case "no-duplicate-publish":
			p.NoDuplicatePublish = true
		case "delivered":
			p.Delivered = true
		case "no-failures":
			p.NoFailures = true
		case "model":
			p.Model = true
		default:
			return Promise{}, fmt.Errorf("unknown promise %q (want no-loss, no-duplicate, no-duplicate-mail, no-duplicate-publish, delivered, no-failures or model)", name)
		}
	}
	return p, nil
}

// Flag renders the promise as ParsePromise reads it: "no-loss,no-duplicate-mail"; "" for no
// promise.
func (p Promise) Flag() string {
	var names []string
	if p.NoLoss {
		names = append(names, "no-loss")
	}
	switch {
	case p.NoDuplicate && p.NoDuplicatePublish:
		names = append(names, "no-duplicate")
	case p.NoDuplicate:
		names = append(names, "no-duplicate-mail")
	case p.NoDuplicatePublish:
		names = append(names, "no-duplicate-publish")
	}
	if p.Delivered {
		names = append(names, "delivered")
	}
	if p.NoFailures {
		names = append(names, "no-failures")
	}
	if p.Model {
		names = append(names, "model")
	}
	return strings.Join(names, ",")
}
