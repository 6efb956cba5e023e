package fakes_test

import (
	"testing"
	"time"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service/mailertest"
)

// faults maps the contract's faults onto the fake's fault plan.
var faults = map[mailertest.Fault]fakes.Fault{
	mailertest.Deliver:          fakes.NoFault,
	mailertest.Transient:        fakes.FailTransient,
	mailertest.Permanent:        fakes.FailPermanent,
	mailertest.TimeoutDelivered: fakes.TimeoutDelivered,
	mailertest.TimeoutLost:      fakes.TimeoutLost,
	mailertest.Hang:             fakes.Hang,
}

func TestMailerPassesTheMailerContract(t *testing.T) {
	mailertest.TestMailer(t, func(t *testing.T, plan []mailertest.Fault, timeout time.Duration) mailertest.Subject {
		hung := make(chan struct{}, len(plan))
		m := fakes.NewMailer(fakes.WithTimeout(timeout, 0), fakes.WithFaultPlan(func(n int) fakes.Fault {
			if n >= len(plan) {
				return fakes.NoFault
			}
			f, ok := faults[plan[n]]
			if !ok {
				t.Errorf("the fake has no fault for %v", plan[n])
			}
			if f == fakes.Hang {
				hung <- struct{}{}
			}
			return f
		}))
		return mailertest.Subject{Mailer: m, Hung: hung, Delivered: func() []mailertest.Delivery {
			var ds []mailertest.Delivery
			for _, mail := range m.Mails() {
				ds = append(ds, mailertest.Delivery{To: mail.To, Subject: mail.Subject, Body: mail.Body, Key: mail.Cause.Identity().ID})
			}
			return ds
		}}
	})
}
