package fakes_test

import (
	"testing"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/service/servicetest"
)

func TestStoreContract(t *testing.T) {
	servicetest.TestStore(t, func() service.Store { return fakes.NewStore() })
}

func TestUnitOfWorkOnStore(t *testing.T) {
	servicetest.TestUnitOfWork(t, func() servicetest.HookedStore { return fakes.NewStore() })
}
