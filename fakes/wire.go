package fakes

import "github.com/stockbus/stockbus/service"

// New wires the whole chapter 8 stack on fakes: a store, a mailer and a unit of work whose bus
// mails OutOfStock. Options configure the unit of work.
func New(opts ...service.Option) (*service.Transactor, *Store, *Mailer) {
	store, mailer := NewStore(), NewMailer()
	return service.Bootstrap(store, mailer, opts...), store, mailer
}
