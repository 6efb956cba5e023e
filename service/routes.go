package service

import "strconv"

// Routes lists the message types the bus has handlers for, in the order they were first
// registered, one entry each: "domain.Allocate: command" or "domain.OutOfStock: 1 handler(s)". It is
// for tests and diagnostics that compare the wiring of two buses (the simulator's against
// Register's); it says nothing about what the handlers do.
func (b *Bus) Routes() []string {
	list := b.routes.Load().list
	out := make([]string, 0, len(list))
	for _, r := range list {
		if r.command != nil {
			out = append(out, r.t.String()+": command")
			continue
		}
		out = append(out, r.t.String()+": "+strconv.Itoa(len(r.handlers))+" handler(s)")
	}
	return out
}
