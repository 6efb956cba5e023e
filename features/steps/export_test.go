package steps

// FuncArgKinds exposes funcArgKinds to the black-box tests.
var FuncArgKinds = funcArgKinds
