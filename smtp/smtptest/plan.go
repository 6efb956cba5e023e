package smtptest

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Stage is the reply of a mail transaction that a Fault replaces.
type Stage int

// The stages a fault can act at.
const (
	// AtData is the reply to the end of the message's data, after the server has read it all.
	AtData Stage = iota
	// AtMail is the reply to MAIL FROM, before any of the message has been sent.
	AtMail
)

// Reply is what the server answers at a fault's stage.
type Reply int

// The replies of a fault.
const (
	// OK goes on as a healthy server would: at AtData the message is delivered.
	OK Reply = iota
	// Transient refuses the message for now: 451 4.3.0.
	Transient
	// Permanent refuses the message for good: 550 5.7.1.
	Permanent
	// Close closes the connection without a reply.
	Close
)

// Fault is what the server does to one mail transaction. The zero Fault is none.
type Fault struct {
	At    Stage
	Reply Reply
	// Delay is how long the server waits before it replies (a slow reply). Closing the server
	// ends the wait and closes the connection without a reply.
	Delay time.Duration
	// Hang makes the server never reply: it waits until the client closes the connection or the
	// server is closed, then closes the connection. At AtData with OK the message is delivered
	// before the wait, so the client cannot learn that it was.
	Hang bool
}

// Plan gives mail transaction n (from 0, in the order the server receives MAIL FROM over all
// connections) its fault. The server answers a fault it cannot carry out (an unknown Stage or
// Reply, a negative Delay) with 554 at MAIL FROM. It is called from the connections' goroutines, so it must be safe for
// concurrent use; it is called once per transaction, when MAIL FROM arrives.
type Plan func(n int) Fault

// Sequence is the plan that gives transaction n faults[n], and no fault past the end.
func Sequence(faults ...Fault) Plan {
	return func(n int) Fault {
		if n >= 0 && n < len(faults) {
			return faults[n]
		}
		return Fault{}
	}
}

// Choice is a fault and the probability that a transaction meets it.
type Choice struct {
	P     float64
	Fault Fault
}

// ErrBadChoices is returned by Draw for probabilities that are not in [0, 1] or add up to more
// than 1.
var ErrBadChoices = errors.New("smtptest: fault probabilities must be in [0, 1] and add up to at most 1")

// Draw is the plan that gives transaction n the first choice whose cumulative probability
// exceeds a uniform draw from a hash of seed and n, and no fault past the last: the same seed
// gives transaction n the same fault whatever the order the goroutines run in.
func Draw(seed uint64, choices ...Choice) (Plan, error) {
	sum := 0.0
	for _, c := range choices {
		if math.IsNaN(c.P) || c.P < 0 || c.P > 1 {
			return nil, fmt.Errorf("%w: %v", ErrBadChoices, c.P)
		}
		sum += c.P
	}
	if sum > 1+1e-9 {
		return nil, fmt.Errorf("%w: they add up to %v", ErrBadChoices, sum)
	}
	choices = append([]Choice(nil), choices...)
	return func(n int) Fault {
		u := float64(mix(seed^mix(uint64(n)+0x9e3779b97f4a7c15))>>11) / (1 << 53)
		for _, c := range choices {
			if u < c.P {
				return c.Fault
			}
			u -= c.P
		}
		return Fault{}
	}, nil
}

// mix is splitmix64's finalizer: a cheap, well-spread hash of x.
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
