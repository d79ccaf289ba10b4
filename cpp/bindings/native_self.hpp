// The C++ object behind a bound instance, checked. Python can make an instance
// without running __init__ (cls.__new__(cls), as restore() does before calling it),
// and pybind11 then hands a method a pointer to freshly allocated, unconstructed
// memory: garbage reads, a mutex that hangs or aborts. Every method and property of
// the bound classes therefore takes self as a handle and goes through native<T>(),
// which raises TypeError for an object whose __init__ has not run, and for a self
// of another type (a method taken from one class and called on another instance).
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <typeinfo>
#include <utility>

namespace fastplace::bindings {

namespace py = pybind11;

// The initialised T held by self, or TypeError.
template <typename T>
T& native(py::handle self) {
    static const py::detail::type_info* const info = py::detail::get_type_info(typeid(T), true);
    PyObject* raw = self.ptr();
    if (!PyObject_TypeCheck(raw, info->type)) {
        throw py::type_error(std::string("expected a ") + info->type->tp_name + ", got " + Py_TYPE(raw)->tp_name);
    }
    auto* inst = reinterpret_cast<py::detail::instance*>(raw);
    const py::detail::value_and_holder holder = inst->get_value_and_holder(info, false);
    if (holder.inst == nullptr || !holder.holder_constructed() || holder.value_ptr() == nullptr) {
        throw py::type_error(std::string(info->type->tp_name) +
                             " object is not initialised: its __init__ was never called");
    }
    return *static_cast<T*>(holder.value_ptr());
}

// Adapters from a callable whose first parameter is the C++ object (a member function,
// a function taking T& first, or such a lambda) to one that takes self as a handle and
// checks it with native<T>: .def("x", method<T>(&T::x)).
template <typename T, typename R, typename C, typename... A>
auto method(R (C::*member)(A...) const) {
    return [member](py::handle self, A... args) -> R { return (native<T>(self).*member)(std::forward<A>(args)...); };
}

template <typename T, typename R, typename C, typename... A>
auto method(R (C::*member)(A...)) {
    return [member](py::handle self, A... args) -> R { return (native<T>(self).*member)(std::forward<A>(args)...); };
}

template <typename T, typename R, typename Self, typename... A>
auto method(R (*function)(Self, A...)) {
    return [function](py::handle self, A... args) -> R { return function(native<T>(self), std::forward<A>(args)...); };
}

namespace detail {
template <typename T, typename F, typename R, typename L, typename Self, typename... A>
auto lambda_method(F f, R (L::*)(Self, A...) const) {
    return [f](py::handle self, A... args) -> R { return f(native<T>(self), std::forward<A>(args)...); };
}
}  // namespace detail

template <typename T, typename F>
auto method(F f) {
    return detail::lambda_method<T>(std::move(f), &F::operator());
}

}  // namespace fastplace::bindings
