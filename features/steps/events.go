package steps

import (
	"fmt"
	"reflect"

	"github.com/stockbus/stockbus/domain"
)

// Note is an event that exists only in the specification: it carries a name and nothing else, so
// that scenarios can show how the bus orders, routes and fails events without the domain's rules
// in the way. The stack has no handler for it until a scenario subscribes one.
type Note struct {
	domain.Meta
	Name string
}

// WithIdentity returns a copy of the note carrying m.
func (n Note) WithIdentity(m domain.Meta) domain.Event { n.Meta = m; return n }

// describe is how an event reads in feature files and in failure reports.
func describe(e domain.Event) string {
	switch e := e.(type) {
	case domain.OutOfStock:
		return fmt.Sprintf("out of stock: %s, order %s", e.SKU, e.OrderID)
	case domain.Allocated:
		return fmt.Sprintf("allocated: %s, order %s, batch %s", e.SKU, e.OrderID, e.BatchRef)
	case domain.Deallocated:
		return fmt.Sprintf("deallocated: %s, order %s", e.SKU, e.OrderID)
	case Note:
		return "note " + e.Name
	}
	return reflect.TypeOf(e).Name()
}

// describeMessage is how a message the bus handled, command or event, reads in feature files and
// in failure reports.
func describeMessage(m domain.Message) string {
	switch m := m.(type) {
	case domain.ChangeBatchQuantity:
		return fmt.Sprintf("change batch quantity: %s to %d", m.Ref, m.Qty)
	case domain.Allocate:
		return fmt.Sprintf("allocate: %s, order %s, qty %d", m.SKU, m.OrderID, m.Qty)
	case domain.CreateBatch:
		return fmt.Sprintf("create batch: %s, batch %s, qty %d", m.SKU, m.Ref, m.Qty)
	case domain.Event:
		return describe(m)
	}
	return reflect.TypeOf(m).String()
}

// eventTypes are the event types a feature file may name, by the name it uses.
var eventTypes = map[string]reflect.Type{
	"OutOfStock":  reflect.TypeFor[domain.OutOfStock](),
	"Allocated":   reflect.TypeFor[domain.Allocated](),
	"Deallocated": reflect.TypeFor[domain.Deallocated](),
	"Note":        reflect.TypeFor[Note](),
}

// eventChoice is the placeholder for the event types a step may name.
const eventChoice = "[OutOfStock|Allocated|Deallocated|Note]"
